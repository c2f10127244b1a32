"""Use cases. Each takes a unit of work and `now`; entry points only turn input into a call here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from incidents.errors import InvalidInput, NotFound
from incidents.events import (
    ObligationAcknowledged,
    ObligationBreached,
    ObligationOpened,
    PersonalInformationAcquired,
    ReminderDue,
    ReportFiled,
    stable_id,
)
from incidents.model import ClockRow, EventRow, Notice, Obligation, Report, format_reference
from incidents.policy import (
    Directory,
    Person,
    Plan,
    PlannedObligation,
    PolicySet,
    ReportFacts,
    plan_for,
)
from incidents.schemas import NewReport
from incidents.unit_of_work import UnitOfWork
from incidents.vocabulary import DataCategory, IncidentKind, Role

# A clock that fires this long after its time (the service was down) is marked late.
LATE_AFTER = timedelta(seconds=60)
# Clocks drift; a discovery time a little ahead of ours is not "in the future".
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Filed:
    report: Report
    obligations: list[Obligation]
    receipt_code: str  # shown once to the reporter; only its hash is kept


@dataclass(frozen=True)
class Draft:
    """A report as submitted, and the channel it came by ("web", "api", "email")."""

    report: NewReport
    channel: str


async def file_reports(
    drafts: Sequence[Draft], *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> list[Filed]:
    """Record reports with the obligations their policy creates, and announce them, in one commit.

    The reports of a batch share one statement per table, so a batch costs little more than one
    report (incidents.intake gathers them). Nothing is written if any draft is refused.
    """
    for draft in drafts:
        if draft.report.discovered_at > now + FUTURE_TOLERANCE:
            raise InvalidInput(
                {"discovered_at": "Discovery can't be in the future; check the date and time zone."}
            )
    receipts = [new_receipt_code() for _ in drafts]
    rows = [
        _report_row(d, receipt, policy, now) for d, receipt in zip(drafts, receipts, strict=True)
    ]
    # The database assigns the numbers behind the references.
    numbers = dict(await uow.insert(Report, rows, returning=(col(Report.id), col(Report.number))))
    # Validated as NewReport already; validating the row again costs more than writing it.
    reports = [Report.model_construct(**row, number=numbers[row["id"]]) for row in rows]
    plans: list[Plan] = []
    planned: list[list[tuple[Obligation, Sequence[datetime]]]] = []
    for report in reports:
        plan = plan_for(
            facts_of(report), policy.packs, policy.directory, now, holidays=policy.holidays
        )
        plans.append(plan)
        planned.append(_planned(plan, report.id, now))
    await _open_all(uow, [o for per_report in planned for o in per_report], now)
    filed = []
    for report, receipt, plan, opened in zip(reports, receipts, plans, planned, strict=True):
        obligations = [ob for ob, _ in opened]
        uow.emit(
            ReportFiled(
                report_id=report.id,
                reference=report.reference,
                kind=report.kind,
                ai_system=report.ai_system,
                department=report.reporter_department,
                data_categories=report.data_categories,
                obligation_ids=[o.id for o in obligations],
                opens=sorted(plan.opens),
            ),
            subject=report.id,
            time=now,
        )
        filed.append(Filed(report=report, obligations=obligations, receipt_code=receipt))
    return filed


def _report_row(draft: Draft, receipt: str, policy: PolicySet, now: datetime) -> dict[str, Any]:
    """A new report's row: every column but the number, which the database assigns."""
    cmd = draft.report
    return {
        "id": str(uuid.uuid4()),
        "kind": cmd.kind.value,
        "title": cmd.title,
        "description": cmd.description,
        "discovered_at": cmd.discovered_at,
        "reported_at": now,
        "reporter_name": cmd.reporter.name,
        "reporter_email": str(cmd.reporter.email),
        "reporter_department": cmd.reporter.department,
        "ai_system": cmd.ai_system,
        "data_categories": [c.value for c in cmd.data_categories],
        "policies": [p.id for p in policy.packs],
        "channel": draft.channel,
        "receipt_hash": _digest(receipt),
    }


async def confirm_acquisition(
    reference: str,
    *,
    confirmed_at: datetime,
    affected_count: int | None,
    by: str,
    uow: UnitOfWork,
    now: datetime,
) -> Report:
    """Record that personal information was acquired; the router opens the statutory clocks."""
    report = await _by_reference(reference, uow)
    if report is None:
        raise NotFound(f"No report has the reference {reference}.")
    if confirmed_at > now + FUTURE_TOLERANCE:
        raise InvalidInput({"confirmed_at": "The confirmation can't be in the future."})
    if affected_count is not None and affected_count < 0:
        raise InvalidInput({"affected_count": "Give the number of people affected, 0 or more."})
    uow.emit(
        PersonalInformationAcquired(
            report_id=report.id, confirmed_at=confirmed_at, affected_count=affected_count, by=by
        ),
        subject=report.id,
        time=now,
    )
    return report


async def open_statutory_clocks(
    event: PersonalInformationAcquired, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> list[Obligation]:
    """The obligations that rules triggered by a confirmed acquisition create, from its time."""
    report = await report_by_id(event.report_id, uow=uow)
    facts = replace(facts_of(report), affected_count=event.affected_count)
    plan = plan_for(
        facts,
        policy.packs,
        policy.directory,
        now,
        trigger="personal_information_acquired",
        since=event.confirmed_at,
        holidays=policy.holidays,
    )
    return await _open_all(uow, _planned(plan, report.id, now), now)


async def report_by_id(report_id: str, *, uow: UnitOfWork) -> Report:
    """The report with this id (not its reference); it must exist."""
    return (await reports_by_id([report_id], uow=uow))[report_id]


async def reports_by_id(report_ids: Iterable[str], *, uow: UnitOfWork) -> dict[str, Report]:
    """The reports with these ids (not references), in one query."""
    rows = await uow.session.exec(select(Report).where(col(Report.id).in_(list(report_ids))))
    return {r.id: r for r in rows}


async def obligations_by_id(ids: Iterable[str], *, uow: UnitOfWork) -> dict[str, Obligation]:
    """The obligations with these ids that exist, in one query."""
    rows = await uow.session.exec(select(Obligation).where(col(Obligation.id).in_(list(ids))))
    return {o.id: o for o in rows}


def facts_of(report: Report) -> ReportFacts:
    return ReportFacts(
        kind=IncidentKind(report.kind),
        department=report.reporter_department,
        ai_system=report.ai_system,
        discovered_at=report.discovered_at,
        reported_at=report.reported_at,
        data_categories=frozenset(DataCategory(c) for c in report.data_categories),
    )


async def report_for_reporter(
    reference: str, receipt_code: str, *, uow: UnitOfWork
) -> tuple[Report, list[Obligation]]:
    """The report and its obligations, for whoever holds its receipt code; else NotFound."""
    report = await _by_reference(reference, uow)
    if report is None or not hmac.compare_digest(report.receipt_hash, _digest(receipt_code)):
        raise NotFound("No report matches that reference and receipt code.")
    return report, await obligations_of(report.id, uow=uow)


async def obligations_of(report_id: str, *, uow: UnitOfWork) -> list[Obligation]:
    rows = await uow.session.exec(
        select(Obligation)
        .where(Obligation.report_id == report_id)
        .order_by(col(Obligation.level), col(Obligation.due_at), col(Obligation.role))
    )
    return list(rows)


async def acknowledge(obligation_id: str, *, by: str, uow: UnitOfWork, now: datetime) -> Obligation:
    """Record who acknowledged, and stop the obligation's clocks. A second time changes nothing."""
    obligation = await uow.session.get(Obligation, obligation_id, with_for_update=True)
    if obligation is None:
        raise NotFound("No such notice to acknowledge.")
    if obligation.status == "acknowledged":
        return obligation
    obligation.status = "acknowledged"
    obligation.acknowledged_at = now
    obligation.acknowledged_by = by
    pending = await uow.session.exec(
        select(ClockRow).where(
            ClockRow.obligation_id == obligation_id, ClockRow.status == "pending"
        )
    )
    for clock in pending:
        clock.status = "cancelled"
    uow.session.add(obligation)
    uow.emit(
        ObligationAcknowledged(obligation_id=obligation_id, by=by),
        subject=obligation.report_id,
        time=now,
    )
    return obligation


async def fire_due_clocks(*, uow: UnitOfWork, now: datetime, limit: int = 500) -> int:
    """Fire every clock due by `now`: reminders, and breaches at deadlines. Returns how many.

    Each firing's event id derives from the clock's id, so a firing repeated after a crash is
    recognised downstream. On PostgreSQL, SKIP LOCKED lets several instances sweep at once
    without firing a clock twice.
    """
    due = await uow.session.exec(
        select(ClockRow)
        .where(ClockRow.status == "pending", col(ClockRow.due_at) <= now)
        .order_by(col(ClockRow.due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    fired = 0
    for clock in due:
        clock.status, clock.fired_at = "fired", now
        uow.session.add(clock)
        obligation = await uow.session.get(Obligation, clock.obligation_id)
        if obligation is None or obligation.status != "open":
            continue
        late = now - clock.due_at > LATE_AFTER
        event_id = stable_id("clock", clock.id)
        if clock.kind == "reminder":
            uow.emit(
                ReminderDue(
                    obligation_id=obligation.id, clock_id=clock.id, due_at=clock.due_at, late=late
                ),
                subject=obligation.report_id,
                time=now,
                id=event_id,
            )
        else:
            obligation.status, obligation.breached_at = "breached", now
            uow.session.add(obligation)
            uow.emit(
                ObligationBreached(obligation_id=obligation.id, due_at=clock.due_at, late=late),
                subject=obligation.report_id,
                time=now,
                id=event_id,
            )
        fired += 1
    return fired


async def escalate(
    obligation_id: str, *, uow: UnitOfWork, directory: Directory, now: datetime
) -> list[Obligation]:
    """Open the next level of a breached obligation's escalation chain, if it has one."""
    obligation = await uow.session.get(Obligation, obligation_id)
    if obligation is None or not obligation.escalation:
        return []
    report = await report_by_id(obligation.report_id, uow=uow)
    level, rest = obligation.escalation[0], obligation.escalation[1:]
    within = timedelta(seconds=float(level["within_seconds"]))
    opened: list[tuple[Obligation, Sequence[datetime]]] = []
    for role_name in level["notify"]:
        role = Role(role_name)
        # One escalation per report, rule and level: when the supervisor, the CDPO and Employee
        # Relations all miss one deadline, the CIO gets one notice naming all three, not three.
        first_rule = obligation.rules[0] if obligation.rules else ""
        next_id = stable_id("escalation", report.id, first_rule, str(obligation.level), role.value)
        if await uow.session.get(Obligation, next_id) is not None:
            continue  # already escalated (by a sibling's breach, or a refused notice)
        next_level = _new_obligation(
            now,
            id=next_id,
            report_id=report.id,
            role=role.value,
            recipients=_people(directory.resolve(role, report.reporter_department)),
            due_at=now + within,
            timezone=obligation.timezone,
            rules=obligation.rules,
            citations=obligation.citations,
            interpretation=obligation.interpretation,
            escalation=rest,
            level=obligation.level + 1,
            escalated_from=obligation.id,
        )
        opened.append((next_level, ()))
    return await _open_all(uow, opened, now)


@dataclass(frozen=True)
class Backlog:
    """What is still waiting to happen, for the people running the service."""

    events_unpublished: int  # committed, not yet handed to Kafka (production mode)
    oldest_unpublished: datetime | None
    notices_waiting: int  # stored, not yet accepted by the mail server
    oldest_waiting: datetime | None
    notices_refused: int  # refused for good by the mail server (and escalated)


async def backlog(*, uow: UnitOfWork) -> Backlog:
    unpublished = (
        await uow.session.exec(
            select(func.count(), func.min(EventRow.time)).where(
                col(EventRow.published_at).is_(None)
            )
        )
    ).one()
    waiting = (
        await uow.session.exec(
            select(func.count(), func.min(Notice.created_at)).where(Notice.status == "pending")
        )
    ).one()
    refused = (await uow.session.exec(select(func.count()).where(Notice.status == "failed"))).one()
    return Backlog(
        events_unpublished=unpublished[0],
        oldest_unpublished=unpublished[1],
        notices_waiting=waiting[0],
        oldest_waiting=waiting[1],
        notices_refused=refused,
    )


def ack_token(secret: bytes, obligation_id: str) -> str:
    """The secret in an acknowledgement link: only the people emailed can acknowledge."""
    return hmac.new(secret, f"ack:{obligation_id}".encode(), hashlib.sha256).hexdigest()[:32]


def ack_token_valid(secret: bytes, obligation_id: str, token: str) -> bool:
    return hmac.compare_digest(ack_token(secret, obligation_id), token)


def new_receipt_code() -> str:
    # 60 random bits in an alphabet without look-alikes (no 0/O, 1/I/L), grouped for reading.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _digest(receipt_code: str) -> str:
    normal = receipt_code.strip().upper().replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()


async def _by_reference(reference: str, uow: UnitOfWork) -> Report | None:
    parts = reference.strip().upper().split("-")
    if len(parts) != 3 or parts[0] != "AI" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    report = await uow.session.get(Report, int(parts[2]))
    if report is None or format_reference(report.reported_at.year, int(parts[2])) != (
        "-".join(parts)
    ):
        return None
    return report


def _people(people: Sequence[Person]) -> list[dict[str, str]]:
    return [{"name": p.name, "email": str(p.email)} for p in people]


def _new_obligation(now: datetime, *, late: bool = False, **fields: Any) -> Obligation:
    """A new obligation, to be written by `_open_all`; one already late starts breached.

    Built without the model's validation, which costs more than writing the row: every field
    comes from checked packs, the directory, or a stored obligation. The result is read-only
    (it is not tracked by the session).
    """
    late = late or fields["due_at"] <= now
    return Obligation.model_construct(
        **fields,
        late=late,
        status="breached" if late else "open",
        breached_at=now if late else None,
        created_at=now,
    )


def _from_plan(p: PlannedObligation, report_id: str, now: datetime) -> Obligation:
    return _new_obligation(
        now,
        id=str(uuid.uuid4()),
        report_id=report_id,
        role=p.role.value,
        recipients=_people(p.recipients),
        due_at=p.due_at,
        timezone=p.timezone,
        rules=list(p.rules),
        citations=[c.model_dump() for c in p.citations],
        interpretation=p.interpretation,
        escalation=[
            {"notify": [r.value for r in lvl.notify], "within_seconds": lvl.within.total_seconds()}
            for lvl in p.escalation
        ],
        late=p.late,
    )


def _planned(
    plan: Plan, report_id: str, now: datetime
) -> list[tuple[Obligation, Sequence[datetime]]]:
    """A plan's obligations for a report, each with its reminder times, for `_open_all`."""
    return [(_from_plan(p, report_id, now), p.reminders) for p in plan.obligations]


async def _open_all(
    uow: UnitOfWork, opened: Sequence[tuple[Obligation, Sequence[datetime]]], now: datetime
) -> list[Obligation]:
    """Add new obligations (`_new_obligation`) with their clocks, and announce each."""
    clocks: list[dict[str, Any]] = []
    for ob, reminders in opened:
        uow.emit(
            ObligationOpened(
                obligation_id=ob.id,
                report_id=ob.report_id,
                role=ob.role,
                level=ob.level,
                late=ob.late,
            ),
            subject=ob.report_id,
            time=now,
        )
        if ob.late:
            uow.emit(
                ObligationBreached(obligation_id=ob.id, due_at=ob.due_at, late=True),
                subject=ob.report_id,
                time=now,
                id=stable_id("clock", f"{ob.id}:deadline"),
            )
            continue
        clocks += [
            _clock(f"{ob.id}:reminder:{i}", ob.id, "reminder", at) for i, at in enumerate(reminders)
        ]
        clocks.append(_clock(f"{ob.id}:deadline", ob.id, "deadline", ob.due_at))
    obligations = [ob for ob, _ in opened]
    await uow.insert(Obligation, [ob.model_dump() for ob in obligations])
    await uow.insert(ClockRow, clocks)  # after their obligations: the foreign key
    return obligations


def _clock(id: str, obligation_id: str, kind: str, due_at: datetime) -> dict[str, Any]:
    """A new clock's row (a plain row: a report makes nine, and ORM objects cost more)."""
    return {
        "id": id,
        "obligation_id": obligation_id,
        "kind": kind,
        "due_at": due_at,
        "status": "pending",
        "fired_at": None,
    }
