"""Use cases of reports: file them (with the obligations their policy creates), look one up with
its receipt code, and record a confirmed acquisition of personal information.

Each takes a unit of work and `now`; entry points only turn input into a call here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func
from sqlmodel import col, select

from incidents.kernel.actor import Principal
from incidents.kernel.errors import Conflict, InvalidInput, NotFound
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.vocabulary import DataCategory, IncidentKind
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation
from incidents.policy import Plan, PolicySet, ReportFacts, plan_for
from incidents.reports.events import PersonalInformationAcquired, ReportClassified, ReportFiled
from incidents.reports.model import Channel, Report, parse_reference
from incidents.reports.schemas import NOT_NAMED, NewReport

# Clocks drift; a discovery time a little ahead of ours is not "in the future".
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Filed:
    report: Report
    obligations: list[Obligation]
    receipt_code: str  # shown once to the reporter; only its hash is kept


@dataclass(frozen=True)
class Origin:
    """Where a published report came from: the event's source, and its key (`event_key`)."""

    source: str
    key: str


@dataclass(frozen=True)
class Draft:
    """A report as submitted, the channel it came by, and the client's idempotency key (or the
    event it was published as)."""

    report: NewReport
    channel: Channel
    idempotency: Idempotency | None = None
    origin: Origin | None = None


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key and the body it came with. The receipt code is derived from both and
    the service's secret, so a retry is answered with the same code without keeping it."""

    key: str
    request_hash: str  # sha256 of the body, canonical JSON
    receipt_code: str


# How long a key holds: a retry after this files a new report.
IDEMPOTENCY_WINDOW = timedelta(hours=24)


def idempotency(secret: bytes, key: str, body: Any) -> Idempotency:
    """The idempotency of a request with this key and (parsed JSON) body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    request_hash = hashlib.sha256(canonical.encode()).hexdigest()
    seed = hmac.new(secret, f"receipt:{key}:{request_hash}".encode(), hashlib.sha256).digest()
    return Idempotency(key, request_hash, _receipt_from(seed))


async def by_idempotency_key(key: str, *, uow: UnitOfWork, now: datetime) -> Report | None:
    """The report filed with this key within the window; an older use of the key is forgotten
    (its key cleared) so that the key can be used again."""
    report = (
        await uow.session.exec(select(Report).where(Report.idempotency_key == key))
    ).one_or_none()
    if report is None or report.reported_at >= now - IDEMPOTENCY_WINDOW:
        return report
    report.idempotency_key = None
    uow.session.add(report)
    return None


async def file_reports(
    drafts: Sequence[Draft], *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> list[Filed]:
    """Record reports with the obligations their policy creates, and announce them, in one commit.

    The reports of a batch share one statement per table, so a batch costs little more than one
    report (`reports.intake` gathers them). Nothing is written if any draft is refused.
    """
    for draft in drafts:
        if draft.report.discovered_at > now + FUTURE_TOLERANCE:
            raise InvalidInput(
                {"discovered_at": "Discovery can't be in the future; check the date and time zone."}
            )
    receipts = [d.idempotency.receipt_code if d.idempotency else new_receipt_code() for d in drafts]
    rows = [
        _report_row(d, receipt, policy, now) for d, receipt in zip(drafts, receipts, strict=True)
    ]
    # The database assigns the numbers behind the references.
    numbers = dict(await uow.insert(Report, rows, returning=(col(Report.id), col(Report.number))))
    # Validated as NewReport already; validating the row again costs more than writing it.
    reports = [Report.model_construct(**row, number=numbers[row["id"]]) for row in rows]
    plans: list[Plan] = []
    opening: list[list[obligations.Opening]] = []
    for report in reports:
        plan = plan_for(
            facts_of(report), policy.packs, policy.directory, now, holidays=policy.holidays
        )
        plans.append(plan)
        opening.append(obligations.planned(plan, report.id, now))
    await obligations.open_all(uow, [o for per_report in opening for o in per_report], now)
    filed = []
    for report, receipt, plan, opened in zip(reports, receipts, plans, opening, strict=True):
        duties = [ob for ob, _ in opened]
        uow.emit(
            ReportFiled(
                report_id=report.id,
                reference=report.reference,
                kind=report.kind,
                ai_system=report.ai_system,
                department=report.reporter_department,
                data_categories=report.data_categories,
                obligation_ids=[o.id for o in duties],
                opens=sorted(plan.opens),
            ),
            subject=report.id,
            time=now,
        )
        filed.append(Filed(report=report, obligations=duties, receipt_code=receipt))
    return filed


def _report_row(draft: Draft, receipt: str, policy: PolicySet, now: datetime) -> dict[str, Any]:
    """A new report's row: every column but the number, which the database assigns."""
    cmd = draft.report
    return {
        "id": new_id(),
        "kind": cmd.kind.value,
        "title": cmd.title,
        "description": cmd.description,
        "discovered_at": cmd.discovered_at,
        "reported_at": now,
        "reporter_name": cmd.reporter.name,
        "reporter_email": str(cmd.reporter.email),
        "reporter_department": cmd.reporter.department,
        "ai_system": cmd.ai_system or "",
        "ai_system_id": cmd.ai_system_id,
        "data_categories": [c.value for c in cmd.data_categories],
        "policies": [p.id for p in policy.packs],
        "channel": draft.channel,
        "receipt_hash": _digest(receipt),
        "idempotency_key": draft.idempotency.key if draft.idempotency else None,
        "request_hash": draft.idempotency.request_hash if draft.idempotency else None,
        "source": draft.origin.source[:500] if draft.origin else None,
        "event_key": draft.origin.key if draft.origin else None,
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
    return await obligations.open_all(uow, obligations.planned(plan, report.id, now), now)


async def report_by_id(report_id: str, *, uow: UnitOfWork) -> Report:
    """The report with this id (not its reference); it must exist."""
    return (await reports_by_id([report_id], uow=uow))[report_id]


async def reports_by_id(report_ids: Iterable[str], *, uow: UnitOfWork) -> dict[str, Report]:
    """The reports with these ids (not references), in one query."""
    rows = await uow.session.exec(select(Report).where(col(Report.id).in_(list(report_ids))))
    return {r.id: r for r in rows}


def facts_of(report: Report) -> ReportFacts:
    """What the policy engine looks at in a stored report."""
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
    return report, told(await obligations.obligations_of(report.id, uow=uow))


async def obligations_told(report_id: str, *, uow: UnitOfWork) -> list[Obligation]:
    """The report's obligations of telling people, without a security case's page and tasks."""
    return told(await obligations.obligations_of(report_id, uow=uow))


def told(duties: list[Obligation]) -> list[Obligation]:
    """The obligations a report's page shows: who is told of it (a security case's page and
    tasks are shown on the case, to security staff only)."""
    return [o for o in duties if not obligations.is_case_work(o)]


_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no look-alikes (0/O, 1/I/L)


def new_receipt_code() -> str:
    # About 59 random bits, grouped for reading.
    return _receipt_from(secrets.token_bytes(12))


def _receipt_from(seed: bytes) -> str:
    raw = "".join(_ALPHABET[b % len(_ALPHABET)] for b in seed[:12])
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _digest(receipt_code: str) -> str:
    normal = receipt_code.strip().upper().replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()


async def by_reference(reference: str, *, uow: UnitOfWork) -> Report:
    """The report with this reference; NotFound naming it otherwise."""
    report = await _by_reference(reference, uow)
    if report is None:
        raise NotFound(f"No report has the reference {reference.strip()}.")
    return report


async def _by_reference(reference: str, uow: UnitOfWork) -> Report | None:
    parsed = parse_reference(reference)
    if parsed is None:
        return None
    report = await uow.session.get(Report, parsed[1])
    # The reference as written must be the report's own (its year, its zero-padded number).
    if report is None or report.reference != reference.strip().upper():
        return None
    return report


def _may_see(principal: Principal, report: Report, duties: Iterable[Obligation]) -> bool:
    """An auditor or admin, the reporter, or a person one of its obligations names."""
    return (
        principal.reads_everything
        or report.reporter_email.lower() == principal.email
        or any(r["email"].lower() == principal.email for o in duties for r in o.recipients)
    )


async def report_for_principal(
    reference: str, principal: Principal, *, uow: UnitOfWork
) -> tuple[Report, list[Obligation]]:
    """The report and its obligations, for its reporter, a person a policy named for it, or an
    auditor; NotFound for anyone else (a report they may not see looks like no report)."""
    report = await _by_reference(reference, uow)
    if report is not None:
        duties = await obligations.obligations_of(report.id, uow=uow)
        if _may_see(principal, report, duties):
            return report, told(duties)
    raise NotFound("No report you may see has that reference.")


async def classify(
    reference: str,
    principal: Principal,
    body: dict[str, Any],
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
) -> tuple[Report, list[Obligation]]:
    """A person the report's obligations name (its triager) chooses its kind, and may add its
    data categories and name its system. The rules for that kind then apply as if the report
    had said so when it was filed: their deadlines count from the original discovery, so a
    clock already past starts breached and escalates. NotFound for anyone else."""
    report = await _by_reference(reference, uow)
    duties = await obligations.obligations_of(report.id, uow=uow) if report else []
    named = any(r["email"].lower() == principal.email for o in duties for r in o.recipients)
    if report is None or not named:
        raise NotFound("No report you may classify has that reference.")
    if report.kind != IncidentKind.UNCLASSIFIED:
        said = IncidentKind(report.kind).plain
        raise Conflict(f"Report {report.reference} is already classified ({said}).")
    errors: dict[str, str] = {}
    choices = [k for k in IncidentKind if k is not IncidentKind.UNCLASSIFIED]
    try:
        kind = IncidentKind(str(body.get("kind")))
        if kind is IncidentKind.UNCLASSIFIED:
            raise ValueError
    except ValueError:
        errors["kind"] = f"Choose one of: {', '.join(k.value for k in choices)}."
    categories = body.get("data_categories") or []
    allowed = {c.value for c in DataCategory}
    if not isinstance(categories, list) or not set(map(str, categories)) <= allowed:
        errors["data_categories"] = f"Use some of: {', '.join(sorted(allowed))}."
    system = str(body.get("ai_system") or "").strip()
    if len(system) > 200:
        errors["ai_system"] = "Keep the system's name under 200 characters."
    if errors:
        raise InvalidInput(errors)
    report.kind = kind.value
    report.data_categories = sorted({*report.data_categories, *map(str, categories)})
    if system and report.ai_system == NOT_NAMED:
        report.ai_system = system
    uow.session.add(report)
    plan = plan_for(facts_of(report), policy.packs, policy.directory, now, holidays=policy.holidays)
    standing = {tuple(o.rules) for o in duties if o.level == 0}
    opening = [
        o for o in obligations.planned(plan, report.id, now) if tuple(o[0].rules) not in standing
    ]
    await obligations.open_all(uow, opening, now)
    opened = [ob for ob, _ in opening]
    uow.emit(
        ReportClassified(
            report_id=report.id,
            reference=report.reference,
            kind=report.kind,
            ai_system=report.ai_system,
            department=report.reporter_department,
            data_categories=report.data_categories,
            obligation_ids=[o.id for o in opened],
            opens=sorted(plan.opens),
            by=principal.email,
        ),
        subject=report.id,
        time=now,
    )
    return report, opened


async def reports_for(
    principal: Principal, *, uow: UnitOfWork, limit: int = 100
) -> list[tuple[Report, list[Obligation]]]:
    """The newest reports this person may see, with their obligations."""
    query = select(Report).order_by(col(Report.number).desc()).limit(limit)
    if not principal.reads_everything:
        # Reports whose obligations name them: found by the JSON text, then checked exactly.
        escaped = principal.email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        naming = select(Obligation.report_id).where(
            cast(Obligation.recipients, String).like(f'%"email": "{escaped}"%', escape="\\")
        )
        query = query.where(
            (func.lower(Report.reporter_email) == principal.email) | col(Report.id).in_(naming)
        )
    found = list(await uow.session.exec(query))
    out = []
    for report in found:
        duties = await obligations.obligations_of(report.id, uow=uow)
        if _may_see(principal, report, duties):
            out.append((report, told(duties)))
    return out
