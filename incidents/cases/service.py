"""Use cases of security cases: open one (from a rule, or by hand), link reports, acknowledge the
page, move through the phases, complete tasks, confirm personal information, hold clocks.

Opening is idempotent per report: a report is in one case at most (`CaseReport`'s key), so a
`ReportFiled` event handled twice, or by two workers at once, opens one case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import col, select

from incidents.cases.events import CaseAcknowledged, CaseOpened, CasePhaseChanged, CaseReportLinked
from incidents.cases.model import PHASE_NAMES, PHASES, Case, CaseReport, Phase
from incidents.kernel.actor import Principal
from incidents.kernel.errors import Conflict, InvalidInput, NotFound
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.policy import Plan, PolicySet
from incidents.policy.cases import PAGE_DUTY, TASK_DUTY, case_for
from incidents.reports import service as reports
from incidents.reports.model import Report

_REFERENCE_DIGITS = 6


def parse_reference(reference: str) -> tuple[int, int] | None:
    """(year, number) of a reference such as 'sec-2026-000001'; None if it is not one."""
    parts = reference.strip().upper().split("-")
    if len(parts) != 3 or parts[0] != "SEC":
        return None
    year, number = parts[1], parts[2]
    if not (year.isascii() and year.isdigit() and len(year) == 4):
        return None
    if not (number.isascii() and number.isdigit() and len(number) == _REFERENCE_DIGITS):
        return None
    return int(year), int(number)


async def by_reference(reference: str, *, uow: UnitOfWork) -> Case:
    parsed = parse_reference(reference)
    found = await uow.session.get(Case, parsed[1]) if parsed else None
    if found is None or parsed is None or found.opened_at.year != parsed[0]:
        raise NotFound("No security case has that reference.")
    return found


async def case_of_report(report_id: str, *, uow: UnitOfWork) -> Case | None:
    row = (
        await uow.session.exec(
            select(Case).where(CaseReport.report_id == report_id, CaseReport.case_id == Case.id)
        )
    ).one_or_none()
    return row


async def open_for_report(
    report: Report,
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
    by: str = "system",
    force: bool = False,
) -> Case | None:
    """The case for this report: the one it is already in, or a new one if a rule opens one
    (or `force`: security staff opened it by hand). None when no rule opens one."""
    existing = await case_of_report(report.id, uow=uow)
    if existing is not None:
        return existing
    planned = case_for(
        reports.facts_of(report),
        policy.packs,
        policy.directory,
        now,
        holidays=policy.holidays,
        force=force,
    )
    if planned is None:
        if force:
            raise InvalidInput(
                {"report": "No active policy pack has a response plan to open a case under."}
            )
        return None
    case = Case(
        id=new_id(),
        severity=planned.severity,
        because=list(planned.because),
        owner_role=planned.owner.value,
        ai_system=report.ai_system,
        plans=list(planned.plans),
        rules=list(planned.rules),
        optional_tasks=list(planned.optional),
        citations=[c.model_dump(exclude_none=True) for c in planned.citations],
        timezone=planned.page.timezone,
        opened_at=now,
        opened_by=by,
    )
    uow.session.add(case)
    await uow.session.flush()  # the database numbers it
    uow.session.add(CaseReport(report_id=report.id, case_id=case.id, linked_at=now, linked_by=by))
    page = replace(
        planned.page,
        action=f"Security case {case.reference} ({report.reference}): {planned.page.action}",
    )
    plan = Plan(obligations=(page, *planned.tasks))
    await obligations.open_all(uow, obligations.planned(plan, report.id, now), now)
    uow.emit(
        CaseOpened(
            case_id=case.id,
            reference=case.reference,
            report_id=report.id,
            severity=case.severity,
            by=by,
        ),
        subject=report.id,
        time=now,
    )
    return case


async def report_for(
    reference: str, principal: Principal, *, reads_cases: bool, uow: UnitOfWork
) -> tuple[Report, list[Obligation]]:
    """A report for this person, as `reports.report_for_principal` decides; and, for someone
    who `reads_cases` (security staff, auditors), any report in a security case too, though
    its policy did not name them. NotFound otherwise."""
    try:
        return await reports.report_for_principal(reference, principal, uow=uow)
    except NotFound:
        if not reads_cases:
            raise
    report = await reports.by_reference(reference, uow=uow)
    if await case_of_report(report.id, uow=uow) is None:
        raise NotFound("No report you may see has that reference.")
    return report, await reports.obligations_told(report.id, uow=uow)


async def link_report(
    case: Case, report_reference: str, *, by: str, uow: UnitOfWork, now: datetime
) -> Report:
    """Add a further report to an open case; a report already in a case stays in it."""
    if case.phase is Phase.CLOSED:
        raise Conflict(f"{case.reference} is closed; open a new case for this report.")
    report = await reports.by_reference(report_reference, uow=uow)
    existing = await case_of_report(report.id, uow=uow)
    if existing is not None:
        if existing.id == case.id:
            return report
        raise Conflict(f"{report.reference} is already in {existing.reference}.")
    uow.session.add(CaseReport(report_id=report.id, case_id=case.id, linked_at=now, linked_by=by))
    uow.emit(
        CaseReportLinked(case_id=case.id, reference=case.reference, report_id=report.id, by=by),
        subject=report.id,
        time=now,
    )
    return report


@dataclass(frozen=True)
class CaseDetails:
    case: Case
    reports: list[Report]
    page: list[Obligation]  # the on-call chain's steps, in order
    tasks: list[Obligation]
    clocks: list[Obligation]  # the reports' own obligations, statutory clocks among them


async def details(case: Case, *, uow: UnitOfWork) -> CaseDetails:
    links = await uow.session.exec(
        select(CaseReport).where(CaseReport.case_id == case.id).order_by(col(CaseReport.linked_at))
    )
    report_ids = [link.report_id for link in links]
    found = await reports.reports_by_id(report_ids, uow=uow)
    duties = list(
        await uow.session.exec(
            select(Obligation)
            .where(col(Obligation.report_id).in_(report_ids))
            .order_by(col(Obligation.due_at))
        )
    )
    page = sorted((o for o in duties if o.duty == PAGE_DUTY), key=lambda o: o.level)
    tasks = [o for o in duties if (o.duty or "").startswith(TASK_DUTY)]
    clocks = [o for o in duties if o not in page and o not in tasks]
    return CaseDetails(
        case=case,
        reports=[found[i] for i in report_ids if i in found],
        page=page,
        tasks=tasks,
        clocks=clocks,
    )


async def listed(
    *,
    uow: UnitOfWork,
    phase: Phase | None = None,
    severity: str | None = None,
    owner: str | None = None,
    limit: int = 200,
) -> list[CaseDetails]:
    """The cases, soonest next deadline first (cases with nothing due go last)."""
    query = select(Case).order_by(col(Case.number).desc()).limit(limit)
    if phase is not None:
        query = query.where(Case.phase == phase)
    if severity:
        query = query.where(Case.severity == severity)
    if owner:
        query = query.where(Case.owner == owner.strip().lower())
    found = [await details(c, uow=uow) for c in await uow.session.exec(query)]
    return sorted(found, key=lambda d: (next_due(d) is None, next_due(d) or d.case.opened_at))


def next_due(d: CaseDetails) -> datetime | None:
    """The soonest deadline still open on the case: a task's, the page's or a clock's."""
    due = [
        o.due_at
        for o in (*d.page, *d.tasks, *d.clocks)
        if o.status is not ObligationStatus.ACKNOWLEDGED
    ]
    return min(due, default=None)


async def acknowledge(case: Case, principal: Principal, *, uow: UnitOfWork, now: datetime) -> Case:
    """Someone on the security side has the case: the page stops for everyone (every open step
    of the chain is acknowledged as them), and the record says who. A second acknowledgement
    changes nothing."""
    if case.acknowledged_at is not None:
        return case
    d = await details(case, uow=uow)
    for step in d.page:
        if step.status is not ObligationStatus.ACKNOWLEDGED:
            await obligations.acknowledge(step.id, by=principal.email, uow=uow, now=now)
    case.acknowledged_at, case.acknowledged_by = now, principal.email
    case.owner = case.owner or principal.email
    uow.session.add(case)
    uow.emit(
        CaseAcknowledged(case_id=case.id, reference=case.reference, by=principal.email),
        subject=d.reports[0].id if d.reports else case.id,
        time=now,
    )
    return case


async def transition(
    case: Case, to: Phase, reason: str | None, *, by: str, uow: UnitOfWork, now: datetime
) -> Case:
    """Move the case to another phase. The next phase needs nothing more; skipping ahead or
    going back needs a reason; closing needs every required task done. Conflict otherwise."""
    before = case.phase
    if before is Phase.CLOSED:
        raise Conflict(f"{case.reference} is closed; its phase cannot change.")
    if to is before:
        raise Conflict(f"{case.reference} is already in {PHASE_NAMES[to].lower()}.")
    step = PHASES.index(to) - PHASES.index(before)
    why = (reason or "").strip()
    if step != 1 and not why:
        direction = "skips a phase" if step > 1 else "goes back"
        raise Conflict(
            f"Moving from {PHASE_NAMES[before].lower()} to {PHASE_NAMES[to].lower()} "
            f"{direction}: give a reason."
        )
    if len(why) > 2000:
        raise InvalidInput({"reason": "Keep the reason under 2,000 characters."})
    if to is Phase.CLOSED:
        d = await details(case, uow=uow)
        open_tasks = [
            t
            for t in d.tasks
            if t.status is not ObligationStatus.ACKNOWLEDGED and t.duty not in case.optional_tasks
        ]
        if open_tasks:
            names = "; ".join((t.action or t.duty or "").split(".")[0] for t in open_tasks)
            raise Conflict(f"{case.reference} has required tasks still open: {names}.")
        case.closed_at = now
    case.phase = to
    uow.session.add(case)
    uow.emit(
        CasePhaseChanged(
            case_id=case.id,
            reference=case.reference,
            before=before.value,
            after=to.value,
            reason=why or None,
            by=by,
        ),
        subject=case.id,
        time=now,
    )
    return case


async def complete_task(
    case: Case, task_id: str, *, by: str, uow: UnitOfWork, now: datetime
) -> Obligation:
    """Mark one of the case's tasks done, by whoever did it (its clocks stop)."""
    d = await details(case, uow=uow)
    if task_id not in {t.id for t in d.tasks}:
        raise NotFound(f"{case.reference} has no task with that id.")
    return await obligations.acknowledge(task_id, by=by, uow=uow, now=now)


async def confirm_personal_information(
    case: Case,
    *,
    residents_affected: int | None,
    states: Sequence[str],
    by: str,
    uow: UnitOfWork,
    now: datetime,
) -> list[Report]:
    """Personal information was acquired: the statutory breach clocks of the active packs open
    on each of the case's reports (the router opens them from the event)."""
    d = await details(case, uow=uow)
    if residents_affected is not None and residents_affected < 0:
        raise InvalidInput({"residents_affected": "Give the number of residents, 0 or more."})
    for report in d.reports:
        await reports.confirm_acquisition(
            report.reference,
            confirmed_at=now,
            affected_count=residents_affected,
            by=f"{by} (case {case.reference}; states: {', '.join(states) or 'not given'})",
            uow=uow,
            now=now,
        )
    return d.reports


async def clock_of(case: Case, clock_id: str, *, uow: UnitOfWork) -> Obligation:
    """One of the clocks on the case's reports (a statutory clock, say); NotFound otherwise."""
    d = await details(case, uow=uow)
    for o in (*d.clocks, *d.tasks):
        if o.id == clock_id:
            return o
    raise NotFound(f"{case.reference} has no clock with that id.")
