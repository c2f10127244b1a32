"""Use cases of obligations: open a plan's obligations with their clocks, acknowledge, escalate,
hold and release."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from incidents.kernel.actor import Principal
from incidents.kernel.errors import Conflict, InvalidInput, NotFound
from incidents.kernel.ids import new_id, stable_id
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.vocabulary import Role
from incidents.obligations.events import (
    ObligationAcknowledged,
    ObligationBreached,
    ObligationHeld,
    ObligationOpened,
    ObligationReleased,
)
from incidents.obligations.model import (
    ClockKind,
    ClockRow,
    ClockStatus,
    Obligation,
    ObligationStatus,
    subject_of,
)
from incidents.policy import Directory, Person, Plan, PlannedObligation
from incidents.policy.cases import PAGE_DUTY, TASK_DUTY
from incidents.policy.reviews import REVIEW_DUTIES

# An obligation to open, with the times of its reminders.
Opening = tuple[Obligation, Sequence[datetime]]


async def obligations_by_id(ids: Iterable[str], *, uow: UnitOfWork) -> dict[str, Obligation]:
    """The obligations with these ids that exist, in one query."""
    rows = await uow.session.exec(select(Obligation).where(col(Obligation.id).in_(list(ids))))
    return {o.id: o for o in rows}


async def obligations_of(report_id: str, *, uow: UnitOfWork) -> list[Obligation]:
    """A report's obligations, the policy's first, then each escalation level; by deadline."""
    rows = await uow.session.exec(
        select(Obligation)
        .where(Obligation.report_id == report_id)
        .order_by(col(Obligation.level), col(Obligation.due_at), col(Obligation.role))
    )
    return list(rows)


async def duties_without_report(email: str, *, uow: UnitOfWork) -> list[Obligation]:
    """The open duties about no report (an audit, a review, an approval request) addressed to
    this person, soonest first."""
    rows = await uow.session.exec(
        select(Obligation)
        .where(
            col(Obligation.report_id).is_(None),
            Obligation.status != ObligationStatus.ACKNOWLEDGED,
        )
        .order_by(col(Obligation.due_at))
    )
    email = email.lower()
    return [o for o in rows if any(r["email"].lower() == email for r in o.recipients)]


def is_case_work(o: Obligation) -> bool:
    """Whether an obligation is follow-up work rather than someone being told of the report:
    a security case's page or task (shown on the case, to security staff), or a sunset
    review's decision, exception or milestone (shown on the system). Not on the report."""
    duty = o.duty or ""
    return duty == PAGE_DUTY or duty.startswith((TASK_DUTY, *REVIEW_DUTIES))


def planned(
    plan: Plan, report_id: str | None, now: datetime, *, subject_id: str | None = None
) -> list[Opening]:
    """A plan's obligations for a report (or, with no report, for what `subject_id` names),
    each with its reminder times, for `open_all`."""
    return [(_from_plan(p, report_id, now, subject_id), p.reminders) for p in plan.obligations]


async def open_all(uow: UnitOfWork, opened: Sequence[Opening], now: datetime) -> list[Obligation]:
    """Write new obligations with their clocks, and announce each; one already late starts
    breached, and its breach is announced at once."""
    clocks: list[dict[str, Any]] = []
    for ob, reminders in opened:
        uow.emit(
            ObligationOpened(
                obligation_id=ob.id,
                report_id=ob.report_id,
                subject_id=ob.subject_id,
                role=ob.role,
                level=ob.level,
                late=ob.late,
            ),
            subject=subject_of(ob),
            time=now,
        )
        if ob.late:
            uow.emit(
                ObligationBreached(obligation_id=ob.id, due_at=ob.due_at, late=True),
                subject=subject_of(ob),
                time=now,
                id=stable_id("clock", f"{ob.id}:deadline"),
            )
            continue
        clocks += [
            _clock(f"{ob.id}:reminder:{i}", ob.id, ClockKind.REMINDER, at)
            for i, at in enumerate(reminders)
        ]
        clocks.append(_clock(f"{ob.id}:deadline", ob.id, ClockKind.DEADLINE, ob.due_at))
    obligations = [ob for ob, _ in opened]
    await uow.insert(Obligation, [ob.model_dump() for ob in obligations])
    await uow.insert(ClockRow, clocks)  # after their obligations: the foreign key
    return obligations


async def acknowledge(obligation_id: str, *, by: str, uow: UnitOfWork, now: datetime) -> Obligation:
    """Record who acknowledged, and stop the obligation's clocks. A second time changes nothing.

    An obligation on hold can be acknowledged too: that ends the hold, and its held clocks are
    stopped with the rest.
    """
    clocks = await _locked_clocks(obligation_id, uow=uow)
    obligation = await uow.session.get(Obligation, obligation_id, with_for_update=True)
    if obligation is None:
        raise NotFound("No such notice to acknowledge.")
    if obligation.status == ObligationStatus.ACKNOWLEDGED:
        return obligation
    obligation.status = ObligationStatus.ACKNOWLEDGED
    obligation.acknowledged_at = now
    obligation.acknowledged_by = by
    if obligation.held_at is not None:
        # Nothing is left to release: the deadline and the time held count the hold up to now.
        obligation.due_at += _end_hold(obligation, now)
    for clock in clocks:
        if clock.status in (ClockStatus.PENDING, ClockStatus.HELD):
            clock.status = ClockStatus.CANCELLED
    uow.session.add(obligation)
    uow.emit(
        ObligationAcknowledged(obligation_id=obligation_id, by=by),
        subject=subject_of(obligation),
        time=now,
    )
    return obligation


# The longest reason a hold may give (the column's size).
REASON_LENGTH = 500


async def hold(
    obligation_id: str, *, reason: str, by: str, uow: UnitOfWork, now: datetime
) -> Obligation:
    """Stop an obligation's clocks until it is released, e.g. when a law-enforcement agency asks
    for a breach notice to be delayed (Wis. Stat. § 134.98, Cal. Civ. Code § 1798.82).

    Its reminders and deadline wait; `release` moves them on by the time held. `reason` says
    why, for the record; `by` is who asked for the hold.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput({"reason": "Say why the clock is held, e.g. who asked for the delay."})
    if len(reason) > REASON_LENGTH:
        raise InvalidInput(
            {"reason": f"Shorten the reason to {REASON_LENGTH} characters or fewer."}
        )
    clocks = await _locked_clocks(obligation_id, uow=uow)
    obligation = await uow.session.get(Obligation, obligation_id, with_for_update=True)
    if obligation is None:
        raise NotFound("No such obligation to hold.")
    if obligation.status == ObligationStatus.ACKNOWLEDGED:
        raise Conflict("This obligation is already acknowledged: its clocks have stopped.")
    if obligation.held_at is not None:
        raise Conflict(f"This obligation is already on hold, since {obligation.held_at:%Y-%m-%d}.")
    obligation.held_at, obligation.hold_reason, obligation.held_by = now, reason, by
    for clock in clocks:
        if clock.status == ClockStatus.PENDING:
            clock.status = ClockStatus.HELD
    uow.session.add(obligation)
    uow.emit(
        ObligationHeld(obligation_id=obligation_id, reason=reason, by=by),
        subject=subject_of(obligation),
        time=now,
    )
    return obligation


async def release(obligation_id: str, *, by: str, uow: UnitOfWork, now: datetime) -> Obligation:
    """End an obligation's hold: its deadline and waiting clocks move on by the time held, and
    run again from now."""
    clocks = await _locked_clocks(obligation_id, uow=uow)
    obligation = await uow.session.get(Obligation, obligation_id, with_for_update=True)
    if obligation is None:
        raise NotFound("No such obligation to release.")
    if obligation.held_at is None:
        raise Conflict("This obligation is not on hold.")
    held = _end_hold(obligation, now)
    obligation.due_at += held
    for clock in clocks:
        if clock.status == ClockStatus.HELD:
            clock.due_at += held
            clock.status = ClockStatus.PENDING
    uow.session.add(obligation)
    uow.emit(
        ObligationReleased(
            obligation_id=obligation_id,
            by=by,
            held_seconds=held.total_seconds(),
            due_at=obligation.due_at,
        ),
        subject=subject_of(obligation),
        time=now,
    )
    return obligation


def _end_hold(obligation: Obligation, now: datetime) -> timedelta:
    """Clear an obligation's hold and add it to its time held; returns how long it lasted."""
    assert obligation.held_at is not None
    # Never negative: a clock set back (another instance's, slightly behind) must not pull the
    # deadline earlier than it was.
    held = max(now - obligation.held_at, timedelta(0))
    obligation.held_seconds += held.total_seconds()
    obligation.held_at = obligation.hold_reason = obligation.held_by = None
    return held


async def _locked_clocks(obligation_id: str, *, uow: UnitOfWork) -> list[ClockRow]:
    """An obligation's clocks, locked, as they are once no sweep is firing one of them.

    Lock them before the obligation, in the order the sweep does (a clock, then its
    obligation): the other way round, a sweep breaching the obligation and a hold or an
    acknowledgement of it would each wait for the other (a deadlock, on PostgreSQL).
    """
    rows = await uow.session.exec(
        select(ClockRow)
        .where(ClockRow.obligation_id == obligation_id)
        .order_by(col(ClockRow.id))
        .with_for_update()
    )
    return list(rows)


async def acknowledge_as(
    obligation_id: str, principal: Principal, *, uow: UnitOfWork, now: datetime
) -> Obligation:
    """Acknowledge an obligation addressed to this person, as them; NotFound for anyone else's
    (so nobody learns which obligations exist)."""
    found = await uow.session.get(Obligation, obligation_id)
    emails = {r["email"].lower() for r in found.recipients} if found else set()
    if principal.email not in emails:
        raise NotFound("No obligation of yours has that id.")
    return await acknowledge(obligation_id, by=principal.email, uow=uow, now=now)


async def record_refusal(obligation_id: str, error: str, *, uow: UnitOfWork) -> None:
    """Keep the mail server's permanent refusal of an obligation's notice, for the record."""
    obligation = await uow.session.get(Obligation, obligation_id)
    if obligation is not None:
        obligation.delivery_error = error
        uow.session.add(obligation)


async def escalate(
    obligation_id: str,
    *,
    department: str,
    uow: UnitOfWork,
    directory: Directory,
    now: datetime,
) -> list[Obligation]:
    """Open the next level of a breached obligation's escalation chain, if it has one.

    `department` is the reporter's: it picks the people behind a per-department role.
    """
    obligation = await uow.session.get(Obligation, obligation_id)
    if obligation is None or not obligation.escalation:
        return []
    level, rest = obligation.escalation[0], obligation.escalation[1:]
    within = timedelta(seconds=float(level["within_seconds"]))
    opened: list[Opening] = []
    for role_name in level["notify"]:
        role = Role(role_name)
        # One escalation per report, rule and level: when the supervisor, the CDPO and Employee
        # Relations all miss one deadline, the CIO gets one notice naming all three, not three.
        first_rule = obligation.rules[0] if obligation.rules else ""
        next_id = stable_id(
            "escalation", subject_of(obligation), first_rule, str(obligation.level), role.value
        )
        if await uow.session.get(Obligation, next_id) is not None:
            continue  # already escalated (by a sibling's breach, or a refused notice)
        next_level = _new_obligation(
            now,
            id=next_id,
            report_id=obligation.report_id,
            subject_id=obligation.subject_id,
            role=role.value,
            recipients=_people(directory.resolve(role, department, now)),
            due_at=now + within,
            timezone=obligation.timezone,
            rules=obligation.rules,
            citations=obligation.citations,
            interpretation=obligation.interpretation,
            action=obligation.action,
            duty=obligation.duty,
            holidays=None,  # the next level's deadline is hours after the breach, not days
            escalation=rest,
            level=obligation.level + 1,
            escalated_from=obligation.id,
        )
        opened.append((next_level, ()))
    return await open_all(uow, opened, now)


def _people(people: Sequence[Person]) -> list[dict[str, str]]:
    return [{"name": p.name, "email": str(p.email)} for p in people]


def _new_obligation(now: datetime, *, late: bool = False, **fields: Any) -> Obligation:
    """A new obligation, to be written by `open_all`; one already late starts breached.

    Built without the model's validation, which costs more than writing the row: every field
    comes from checked packs, the directory, or a stored obligation. The result is read-only
    (it is not tracked by the session).
    """
    late = late or fields["due_at"] <= now
    return Obligation.model_construct(
        **fields,
        late=late,
        status=ObligationStatus.BREACHED if late else ObligationStatus.OPEN,
        breached_at=now if late else None,
        created_at=now,
    )


def _from_plan(
    p: PlannedObligation, report_id: str | None, now: datetime, subject_id: str | None = None
) -> Obligation:
    return _new_obligation(
        now,
        id=new_id(),
        report_id=report_id,
        subject_id=subject_id,
        role=p.role.value,
        recipients=_people(p.recipients),
        due_at=p.due_at,
        timezone=p.timezone,
        rules=list(p.rules),
        citations=[c.model_dump() for c in p.citations],
        interpretation=p.interpretation,
        action=p.action,
        duty=p.duty or None,
        holidays=list(p.holidays) or None,
        escalation=[
            {"notify": [r.value for r in lvl.notify], "within_seconds": lvl.within.total_seconds()}
            for lvl in p.escalation
        ],
        late=p.late,
    )


def _clock(id: str, obligation_id: str, kind: ClockKind, due_at: datetime) -> dict[str, Any]:
    """A new clock's row (a plain row: a report makes nine, and ORM objects cost more)."""
    return {
        "id": id,
        "obligation_id": obligation_id,
        "kind": kind,
        "due_at": due_at,
        "status": ClockStatus.PENDING,
        "fired_at": None,
    }
