"""Use cases of AI systems: the inventory, reviews that open from reports, and the decider's
decisions (halt, an express exception, a phase-out plan) with their clocks.

A system has at most one open review: a report that would open another joins it instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from incidents.kernel.actor import Principal
from incidents.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork, UnitOfWorkFactory
from incidents.kernel.vocabulary import DataCategory, Role, role_name
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.policy import Plan, PlannedObligation, PolicySet
from incidents.policy.directory import Directory
from incidents.policy.engine import deadline_for, deadline_since
from incidents.policy.reviews import PlannedReview, review_for
from incidents.policy.schema import Citation, EscalationLevel, Pack
from incidents.record.model import AuditEntry
from incidents.reports import service as reports
from incidents.reports.model import Report
from incidents.reports.schemas import NOT_NAMED, NewReport
from incidents.systems.events import (
    ApprovalDecided,
    ApprovalRequested,
    ReviewDecided,
    ReviewOpened,
    SystemStatusChanged,
)
from incidents.systems.model import (
    APPROVAL,
    AUDIT,
    DECISION,
    EXCEPTION,
    FACT_SHEET,
    MILESTONE,
    TOLD,
    AISystem,
    ApprovalRequest,
    Decision,
    RequestStatus,
    Review,
    ReviewStatus,
    SystemStatus,
)

# The longest window a threshold looks back over; earlier reports never count.
LOOKBACK = timedelta(days=366)
MILESTONE_REMINDER = timedelta(days=1)  # the owner is reminded a day before
MILESTONE_ESCALATION = timedelta(days=1)  # the decider is told a day after a missed one
AUDIT_REMINDER = timedelta(days=14)  # the decider is reminded two weeks before an audit


class IncompletePlan(InvalidInput):
    """A phase-out plan that misses what the policy asks of it; the web answers 422."""


# --- the inventory ---------------------------------------------------------------------------


async def by_id(system_id: str, *, uow: UnitOfWork) -> AISystem:
    found = await uow.session.get(AISystem, system_id)
    if found is None:
        raise NotFound("No AI system has that id.")
    return found


async def with_name(cmd: NewReport, *, uow: UnitOfWork) -> NewReport:
    """A report that names its system by id gets the inventory's name for it."""
    if cmd.ai_system_id is None:
        return cmd
    try:
        found = await by_id(cmd.ai_system_id, uow=uow)
    except NotFound:
        raise InvalidInput(
            {"ai_system_id": "No AI system has that id; GET /api/v1/systems lists them."}
        ) from None
    return cmd.model_copy(update={"ai_system": found.name})


async def by_name(name: str, *, uow: UnitOfWork) -> AISystem | None:
    query = select(AISystem).where(func.lower(AISystem.name) == name.strip().lower())
    return (await uow.session.exec(query)).first()


async def approved_among(names: set[str], *, uow: UnitOfWork) -> set[str]:
    """Which of these system names (folded) are approved systems in the inventory."""
    folded = {n.casefold() for n in names}
    if not folded:
        return set()
    rows = await uow.session.exec(
        select(AISystem.name).where(
            func.lower(AISystem.name).in_(folded), col(AISystem.approved_at).is_not(None)
        )
    )
    return {n.casefold() for n in rows}


def governing(
    policy: PolicySet, department: str, section: str, wants: Callable[[Pack], bool] = bool
) -> Pack | None:
    """The pack whose `section` (approval, sunset) governs a department's systems: a
    department's own pack (the Police SOP) before a citywide one. `wants` narrows the choice
    (e.g. to packs whose sunset section asks for audits)."""
    folded = department.casefold()
    candidates = [
        p
        for p in policy.packs
        if getattr(p, section) is not None
        and wants(p)
        and (not p.departments or folded in {d.casefold() for d in p.departments})
    ]
    candidates.sort(key=lambda p: not p.departments)
    return candidates[0] if candidates else None


async def inventory(*, uow: UnitOfWork, approved_only: bool = False) -> list[AISystem]:
    query = select(AISystem).order_by(func.lower(AISystem.name))
    if approved_only:
        query = query.where(col(AISystem.approved_at).is_not(None))
    return list(await uow.session.exec(query))


async def register(
    name: str,
    *,
    uow: UnitOfWork,
    now: datetime,
    department: str = "",
    vendor: str = "",
    purpose: str = "",
    public_facing: bool = False,
    pilot: bool = False,
    approved_by: str | None = None,
    approval_rule: str | None = None,
    data_categories: Sequence[str] = (),
    fact_sheet: Mapping[str, str] | None = None,
) -> AISystem:
    """Add a system to the inventory (approved by `approved_by`), or update the one of that
    name. Without an approver, a system first met in a report is `unregistered`."""
    found = await by_name(name, uow=uow)
    if found is None:
        found = AISystem(
            id=new_id(),
            name=name.strip(),
            status=SystemStatus.ACTIVE if approved_by else SystemStatus.UNREGISTERED,
            created_at=now,
        )
    found.department = department or found.department
    found.vendor = vendor or found.vendor
    found.purpose = purpose or found.purpose
    found.public_facing, found.pilot = public_facing, pilot
    found.data_categories = list(data_categories) or found.data_categories
    found.fact_sheet = {**found.fact_sheet, **(fact_sheet or {})}
    if approved_by and found.approved_at is None:
        found.approved_by, found.approved_at = approved_by, now
        found.approval_rule = approval_rule
        if found.status is SystemStatus.UNREGISTERED:
            found.status = SystemStatus.ACTIVE
    uow.session.add(found)
    await uow.session.flush()
    return found


async def adopt_directory(directory: Directory, *, uows: UnitOfWorkFactory, now: datetime) -> int:
    """Put the directory's AI systems in the inventory, as approved, where they are not yet:
    a city's existing list is its inventory until it imports one. Safe on every start."""
    added = 0
    try:
        async with uows() as uow:
            for name, attrs in directory.ai_systems.items():
                if await by_name(name, uow=uow) is None:
                    await register(
                        name,
                        uow=uow,
                        now=now,
                        public_facing=attrs.public_facing,
                        pilot=attrs.pilot,
                        approved_by="the directory",
                    )
                    added += 1
    except IntegrityError:
        return 0  # another instance starting at the same moment added them
    return added


async def reviews_of(system_id: str, *, uow: UnitOfWork) -> list[Review]:
    query = select(Review).where(Review.system_id == system_id).order_by(col(Review.opened_at))
    return list(await uow.session.exec(query))


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    before: str
    after: str
    why: str


async def status_history(system_id: str, *, uow: UnitOfWork) -> list[StatusChange]:
    """Every change of the system's status, from the record, oldest first."""
    rows = await uow.session.exec(
        select(AuditEntry)
        .where(AuditEntry.subject == system_id, AuditEntry.action == SystemStatusChanged.name)
        .order_by(col(AuditEntry.seq))
    )
    return [
        StatusChange(
            at=e.at,
            before=str(e.data.get("before", "")),
            after=str(e.data.get("after", "")),
            why=str(e.data.get("why", "")),
        )
        for e in rows
    ]


async def reports_about(system_id: str, *, uow: UnitOfWork, limit: int = 50) -> list[Report]:
    """The latest reports about the system."""
    rows = await uow.session.exec(
        select(Report)
        .where(Report.ai_system_id == system_id)
        .order_by(col(Report.reported_at).desc())
        .limit(limit)
    )
    return list(rows)


async def milestones_of(review: Review, *, uow: UnitOfWork) -> list[Obligation]:
    """A phase-out's milestone clocks, in the plan's order."""
    rows = await _duties(f"{MILESTONE}{review.id}:", review.system_id, uow=uow)
    return sorted(rows, key=lambda o: int((o.duty or "0").rsplit(":", 1)[-1]))


# --- reviews ---------------------------------------------------------------------------------


def _pack(policy: PolicySet, pack_id: str) -> Pack:
    return next(p for p in policy.packs if p.id == pack_id)


async def report_arrived(
    report: Report, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> Review | None:
    """A report about a system: link it to the inventory, and open (or join) a review when a
    rule or the pack's threshold says so."""
    if report.ai_system == NOT_NAMED:
        return None  # nobody named a system yet: a triager will
    system = await by_name(report.ai_system, uow=uow)
    if system is None:
        # The directory's systems (the demo's, or a city's file) count as approved; any other
        # is recorded as one nobody approved, which its page and the review say.
        known = next(
            (n for n in policy.directory.ai_systems if n.casefold() == report.ai_system.casefold()),
            None,
        )
        attrs = policy.directory.system(report.ai_system)
        system = await register(
            known or report.ai_system,
            uow=uow,
            now=now,
            public_facing=attrs.public_facing,
            pilot=attrs.pilot,
            approved_by="the directory" if known else None,
        )
    if report.ai_system_id is None:
        report.ai_system_id = system.id
        uow.session.add(report)
    earlier = await uow.session.exec(
        select(Report.kind).where(
            Report.ai_system_id == system.id,
            Report.id != report.id,
            col(Report.reported_at) >= report.reported_at - LOOKBACK,
        )
    )
    facts = reports.facts_of(report)
    planned, _ = review_for(
        facts, policy.packs, policy.directory, now, recent_kinds=[str(k) for k in earlier]
    )
    if planned is None:
        return None
    if planned.opened_by.startswith("threshold:"):
        # Only reports within that pack's window count: the query took the longest window.
        threshold = _pack(policy, planned.pack).sunset
        assert threshold is not None and threshold.threshold is not None
        window = threshold.threshold.within
        recent = await uow.session.exec(
            select(func.count()).where(
                Report.ai_system_id == system.id,
                col(Report.reported_at) >= report.reported_at - window,
                col(Report.kind).in_([k.value for k in threshold.threshold.kinds]),
            )
        )
        if recent.one() < threshold.threshold.count:
            return None
    return await open_review(system, planned, report, uow=uow, policy=policy, now=now)


async def open_review(
    system: AISystem,
    planned: PlannedReview,
    report: Report | None,
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
    decider_within: Any = None,
) -> Review:
    """Open a review (or add the report to the one already open): the decider is told, on a
    clock, and the system is under review (halted at once where the pack says so). A review
    opened by an audit or by hand has no report."""
    current = (
        await uow.session.exec(
            select(Review).where(Review.system_id == system.id, Review.status == ReviewStatus.OPEN)
        )
    ).first()
    if current is not None:
        if report is not None and report.id not in current.report_ids:
            current.report_ids = [*current.report_ids, report.id]
            uow.session.add(current)
        if planned.halt and system.status is not SystemStatus.HALTED:
            _status(system, SystemStatus.HALTED, planned.reason, uow=uow, now=now)
        return current
    pack = _pack(policy, planned.pack)
    review = Review(
        id=new_id(),
        system_id=system.id,
        pack=pack.id,
        decider_role=planned.decider.value,
        opened_by=planned.opened_by,
        opened_at=now,
        reason=planned.reason,
        report_ids=[report.id] if report is not None else [],
        citations=[c.model_dump(exclude_none=True) for c in planned.citations],
    )
    uow.session.add(review)
    assert pack.sunset is not None
    if report is not None:
        due, _, _ = deadline_for(
            pack.sunset.decide_within, pack, reports.facts_of(report), since=now
        )
    else:
        due = deadline_since(pack.sunset.decide_within, pack, now)
    exception_by = pack.sunset.exception_decider
    await _obligation(
        report,
        system,
        role=planned.decider,
        due=due,
        duty=f"{DECISION}{review.id}",
        action=(
            f"Decide on {system.name}: halt it, "
            + (
                f"ask {role_name(exception_by)} for an express exception, "
                if exception_by
                else "grant an express exception with conditions and an expiry, "
            )
            + f"approve a phase-out plan, or keep it in use. Why it is under review: "
            f"{planned.reason}."
        ),
        rule=f"{pack.id}/sunset",
        citations=planned.citations,
        timezone=pack.timezone,
        uow=uow,
        policy=policy,
        now=now,
    )
    after = SystemStatus.HALTED if planned.halt else SystemStatus.UNDER_REVIEW
    _status(system, after, planned.reason, uow=uow, now=now)
    uow.emit(
        ReviewOpened(
            review_id=review.id,
            system_id=system.id,
            system=system.name,
            opened_by=planned.opened_by,
            halted=planned.halt,
        ),
        subject=system.id,
        time=now,
    )
    return review


async def open_by_hand(
    system: AISystem,
    principal: Principal,
    reason: str,
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
) -> Review:
    """A review opened by someone who may decide on systems, with their reason."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput({"reason": "Say why the system needs a review."})
    pack = governing(policy, system.department, "sunset")
    if pack is None or pack.sunset is None:
        raise Conflict("No policy in force says who decides on this system's review.")
    if system.status is SystemStatus.RETIRED:
        raise Conflict(f"{system.name} is retired: there is nothing left to review.")
    planned = PlannedReview(
        pack=pack.id,
        decider=pack.sunset.decider,
        opened_by=f"by hand: {principal.email}",
        halt=False,
        reason=reason[:2000],
        citations=(pack.sunset.citation,),
    )
    return await open_review(system, planned, None, uow=uow, policy=policy, now=now)


def _status(
    system: AISystem, after: SystemStatus, why: str, *, uow: UnitOfWork, now: datetime
) -> None:
    before = system.status
    if before is after:
        return
    system.status = after
    uow.session.add(system)
    uow.emit(
        SystemStatusChanged(
            system_id=system.id,
            system=system.name,
            before=before.value,
            after=after.value,
            why=why[:500],
        ),
        subject=system.id,
        time=now,
    )


async def _obligation(
    report: Report | None,
    system: AISystem | None,
    *,
    role: Role,
    due: datetime,
    duty: str,
    action: str,
    rule: str,
    citations: Sequence[Any],
    timezone: str,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
    reminders: Sequence[datetime] = (),
    escalation: Sequence[EscalationLevel] = (),
    department: str | None = None,
    subject_id: str | None = None,
) -> None:
    """A duty on the one clock mechanism: about the report when there is one, else about the
    system (or `subject_id`, e.g. an approval request)."""
    if department is None:
        department = report.reporter_department if report else (system.department if system else "")
    planned = PlannedObligation(
        role=role,
        recipients=policy.directory.resolve(role, department, now),
        due_at=due,
        rules=(rule,),
        citations=tuple(citations),
        timezone=timezone,
        reminders=tuple(r for r in reminders if r > now),
        escalation=tuple(escalation),
        action=action,
        duty=duty,
    )
    plan = Plan(obligations=(planned,))
    about = subject_id or (system.id if system else None)
    await obligations.open_all(
        uow,
        obligations.planned(plan, report.id if report else None, now, subject_id=about),
        now,
    )


async def _duties(prefix: str, subject_id: str, *, uow: UnitOfWork) -> list[Obligation]:
    """The level-0 obligations of one review or request, by their duty's prefix."""
    rows = await uow.session.exec(
        select(Obligation).where(
            Obligation.subject_id == subject_id,
            col(Obligation.duty).startswith(prefix),
            Obligation.level == 0,
        )
    )
    return list(rows)


async def _done(prefix: str, subject_id: str, by: str, *, uow: UnitOfWork, now: datetime) -> None:
    """A decision was made: the clocks that waited for it stop."""
    for o in await _duties(prefix, subject_id, uow=uow):
        if o.status is not ObligationStatus.ACKNOWLEDGED:
            await obligations.acknowledge(o.id, by=by, uow=uow, now=now)


# --- periodic audits -------------------------------------------------------------------------


def _audit_pack(policy: PolicySet, department: str) -> Pack | None:
    return governing(
        policy, department, "sunset", lambda p: p.sunset is not None and p.sunset.audit is not None
    )


async def schedule_audit(
    system: AISystem, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> datetime | None:
    """Put the system's next periodic audit on a clock, where a pack asks for audits: when it
    falls due, a review of the system opens. Returns when it falls due."""
    pack = _audit_pack(policy, system.department)
    if pack is None or system.status in (SystemStatus.HALTED, SystemStatus.RETIRED):
        return None
    assert pack.sunset is not None and pack.sunset.audit is not None
    audit = pack.sunset.audit
    due = now + audit.every
    system.next_review_at = due
    uow.session.add(system)
    await _obligation(
        None,
        system,
        role=pack.sunset.decider,
        due=due,
        duty=f"{AUDIT}{system.id}",
        action=(
            f"Periodic audit of {system.name}: it falls due on the date below, and a review of "
            f"the system then opens for you to decide whether it continues."
            + (f" ({audit.note})" if audit.note else "")
        ),
        rule=f"{pack.id}/audit",
        citations=(audit.citation,),
        timezone=pack.timezone,
        uow=uow,
        policy=policy,
        now=now,
        reminders=[due - AUDIT_REMINDER],
    )
    return due


async def audit_due(
    obligation: Obligation, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> Review | None:
    """A system's periodic audit fell due: its review opens."""
    system = await uow.session.get(AISystem, (obligation.duty or "").removeprefix(AUDIT))
    if system is None or system.status is SystemStatus.RETIRED:
        return None
    pack = _audit_pack(policy, system.department)
    if pack is None:
        return None
    assert pack.sunset is not None and pack.sunset.audit is not None
    planned = PlannedReview(
        pack=pack.id,
        decider=pack.sunset.decider,
        opened_by=f"audit:{pack.id}",
        halt=False,
        reason="its periodic audit fell due",
        citations=(pack.sunset.audit.citation, pack.sunset.citation),
    )
    review = await open_review(system, planned, None, uow=uow, policy=policy, now=now)
    if obligation.status is not ObligationStatus.ACKNOWLEDGED:
        # The duty became the review: it is not someone's missed deadline.
        await obligations.acknowledge(
            obligation.id, by="the service (the audit's review opened)", uow=uow, now=now
        )
    return review


# --- decisions -------------------------------------------------------------------------------


async def review_by_id(review_id: str, *, uow: UnitOfWork) -> Review:
    found = await uow.session.get(Review, review_id)
    if found is None:
        raise NotFound("No review has that id.")
    return found


def may_decide(principal: Principal, review: Review, policy: PolicySet | None = None) -> bool:
    """Whether this person decides the review: its decider, or the one who alone may grant
    its exception (Redondo Beach's City Manager)."""
    roles = {r.value for r in principal.roles}
    if review.decider_role in roles:
        return True
    pack = next((p for p in policy.packs if p.id == review.pack), None) if policy else None
    by = pack.sunset.exception_decider if pack and pack.sunset else None
    return by is not None and by.value in roles


def _end_of(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(23, 59), ZoneInfo(zone)).astimezone(UTC)


def _day(value: Any, field: str, today: date) -> date:
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput({field: "Give a date such as 2027-03-31."}) from None
    if day < today:
        raise InvalidInput({field: "Give a date from today on."})
    return day


@dataclass(frozen=True)
class Milestone:
    title: str
    due_on: date
    owner_role: Role


def check_plan(plan: Any, sections: Sequence[str], today: date) -> list[Milestone]:
    """A phase-out plan's milestones, once the plan addresses every section the policy asks;
    IncompletePlan naming each one missing otherwise."""
    if not isinstance(plan, Mapping):
        raise IncompletePlan({"plan": "Send the plan as an object with its sections."})
    missing = {
        s: f"The plan must address {s.replace('_', ' ')}."
        for s in sections
        if not isinstance(plan.get(s), str) or not plan[s].strip()
    }
    items = plan.get("milestones")
    if not isinstance(items, list) or not items:
        missing["milestones"] = "The plan needs at least one milestone, each with an owner."
    if missing:
        raise IncompletePlan(missing)
    milestones = []
    assert isinstance(items, list)
    for i, item in enumerate(items):
        where = f"milestones[{i}]"
        if not isinstance(item, Mapping) or not str(item.get("title", "")).strip():
            raise IncompletePlan({where: "Give each milestone a title, due_on and owner_role."})
        try:
            owner = Role(str(item.get("owner_role")))
        except ValueError:
            raise IncompletePlan({f"{where}.owner_role": "Name a role, e.g. cio."}) from None
        milestones.append(
            Milestone(
                title=str(item["title"]).strip()[:300],
                due_on=_day(item.get("due_on"), f"{where}.due_on", today),
                owner_role=owner,
            )
        )
    return milestones


def _check_decider(principal: Principal, review: Review, decision: Decision, pack: Pack) -> None:
    """Forbidden unless this person makes this decision: where a pack names someone else for
    exceptions, only they grant one, and only the decider makes the others."""
    roles = {r.value for r in principal.roles}
    by = pack.sunset.exception_decider if pack.sunset else None
    if decision is Decision.EXCEPTION and by is not None:
        if by.value not in roles:
            raise Forbidden(f"Only {role_name(by)} may grant an exception under this policy.")
    elif review.decider_role not in roles:
        raise Forbidden(f"Only {role_name(review.decider_role)} may make this decision.")


async def decide(
    review: Review,
    principal: Principal,
    body: Mapping[str, Any],
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
) -> Review:
    """The decider's decision: halt, an express exception (conditions and an expiry, itself a
    clock that reopens the review when it lapses), a phase-out plan (its milestones become
    clocks; the system is retired when the last is done), or keep it in use (the next audit is
    scheduled). NotFound for anyone but the decider."""
    if not may_decide(principal, review, policy):
        raise NotFound("No review you may decide has that id.")
    if review.status is not ReviewStatus.OPEN:
        raise Conflict("This review is already decided.")
    try:
        decision = Decision(str(body.get("decision")))
    except ValueError:
        raise InvalidInput({"decision": "Use halt, exception, phase_out or continue."}) from None
    system = await by_id(review.system_id, uow=uow)
    pack = _pack(policy, review.pack)
    _check_decider(principal, review, decision, pack)
    zone = pack.timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    first = await reports.report_by_id(review.report_ids[0], uow=uow) if review.report_ids else None
    rule = f"{pack.id}/sunset"
    citations: list[Citation] = [pack.sunset.citation] if pack.sunset else []
    if decision is Decision.HALT:
        _status(system, SystemStatus.HALTED, f"halted by {principal.email}", uow=uow, now=now)
        told = f"{system.name} is halted by decision of {principal.email}: stop using it."
    elif decision is Decision.CONTINUE:
        reasons = str(body.get("reasons") or "").strip()
        if not reasons:
            raise InvalidInput({"reasons": "Say why the system may stay in use."})
        review.conditions = reasons[:5000]
        _status(system, SystemStatus.ACTIVE, f"kept in use: {reasons}", uow=uow, now=now)
        await schedule_audit(system, uow=uow, policy=policy, now=now)
        told = f"{system.name} stays in use, by decision of {principal.email}: {reasons}"
    elif decision is Decision.EXCEPTION:
        conditions = str(body.get("conditions") or "").strip()
        if not conditions:
            raise InvalidInput({"conditions": "An express exception states its conditions."})
        expires = _day(body.get("expires_on"), "expires_on", today)
        review.conditions, review.expires_at = conditions[:5000], _end_of(expires, zone)
        if pack.sunset and pack.sunset.exception_citation:
            citations = [pack.sunset.exception_citation]
        await _obligation(
            first,
            system,
            role=Role(review.decider_role),
            due=review.expires_at,
            duty=f"{EXCEPTION}{review.id}",
            action=(
                f"The exception for {system.name} expires: when it lapses, the review opens "
                f"again. Conditions: {review.conditions}"
            ),
            rule=rule,
            citations=citations,
            timezone=zone,
            uow=uow,
            policy=policy,
            now=now,
        )
        _status(system, SystemStatus.EXCEPTED, f"exception until {expires}", uow=uow, now=now)
        told = f"{system.name} may stay in use until {expires}, on conditions: {conditions}"
    else:
        sections = pack.sunset.plan_sections if pack.sunset else []
        milestones = check_plan(body.get("plan"), sections, today)
        review.plan = dict(body["plan"])
        for i, m in enumerate(milestones):
            due = _end_of(m.due_on, zone)
            await _obligation(
                first,
                system,
                role=m.owner_role,
                due=due,
                duty=f"{MILESTONE}{review.id}:{i}",
                action=f"Phase-out of {system.name}, milestone {i + 1}: {m.title}",
                rule=rule,
                citations=citations,
                timezone=zone,
                uow=uow,
                policy=policy,
                now=now,
                reminders=[due - MILESTONE_REMINDER],
                escalation=[
                    EscalationLevel(notify=[Role(review.decider_role)], within=MILESTONE_ESCALATION)
                ],
            )
        _status(system, SystemStatus.PHASING_OUT, "phase-out plan approved", uow=uow, now=now)
        told = f"{system.name} is to be phased out: {len(milestones)} milestone(s)."
    review.status = ReviewStatus.DECIDED
    review.decision = decision
    review.decided_by, review.decided_at = principal.email, now
    uow.session.add(review)
    # The decision clock is done, and the system's department is told.
    await _done(f"{DECISION}{review.id}", system.id, principal.email, uow=uow, now=now)
    await _obligation(
        first,
        system,
        role=Role.DEPARTMENT_HEAD,
        due=now + timedelta(days=1),
        duty=f"{TOLD}{review.id}",
        action=f"Decision on {system.name} ({decision.value.replace('_', ' ')}): {told}",
        rule=rule,
        citations=citations,
        timezone=zone,
        uow=uow,
        policy=policy,
        now=now,
        department=system.department or (first.reporter_department if first else ""),
    )
    uow.emit(
        ReviewDecided(
            review_id=review.id,
            system_id=system.id,
            system=system.name,
            decision=decision.value,
            by=principal.email,
        ),
        subject=system.id,
        time=now,
    )
    return review


async def exception_lapsed(
    obligation: Obligation, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> Review | None:
    """An exception's expiry passed: the review opens again."""
    review_id = (obligation.duty or "").removeprefix(EXCEPTION)
    old = await uow.session.get(Review, review_id)
    if old is None:
        return None
    system = await by_id(old.system_id, uow=uow)
    report = await reports.report_by_id(old.report_ids[0], uow=uow) if old.report_ids else None
    pack = _pack(policy, old.pack)
    assert pack.sunset is not None
    planned = PlannedReview(
        pack=pack.id,
        decider=Role(old.decider_role),
        opened_by="exception lapsed",
        halt=False,
        reason=f"the exception granted by {old.decided_by} lapsed",
        citations=(pack.sunset.citation,),
    )
    return await open_review(system, planned, report, uow=uow, policy=policy, now=now)


async def milestone_done(obligation: Obligation, *, uow: UnitOfWork, now: datetime) -> bool:
    """A milestone is done: when it was the last, the system is retired."""
    review_id = (obligation.duty or "").removeprefix(MILESTONE).split(":")[0]
    review = await uow.session.get(Review, review_id)
    if review is None:
        return False
    rows = await _duties(f"{MILESTONE}{review.id}:", review.system_id, uow=uow)
    if any(o.status is not ObligationStatus.ACKNOWLEDGED for o in rows):
        return False
    system = await by_id(review.system_id, uow=uow)
    _status(system, SystemStatus.RETIRED, "the last phase-out milestone is done", uow=uow, now=now)
    return True


def decider_name(review: Review) -> str:
    return role_name(review.decider_role)


# --- approval requests for new systems -------------------------------------------------------


def _flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "no", "false", "0", "off"):
        return False
    if text in ("yes", "true", "1", "on"):
        return True
    raise InvalidInput({field: "Answer yes or no."})


def _text(body: Mapping[str, Any], field: str, limit: int, *, required: str | None) -> str:
    value = str(body.get(field) or "").strip()
    if required and not value:
        raise InvalidInput({field: required})
    if len(value) > limit:
        raise InvalidInput({field: f"Keep it under {limit} characters."})
    return value


async def request_approval(
    body: Mapping[str, Any],
    principal: Principal,
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
) -> ApprovalRequest:
    """A department asks to use a new AI system. The approver the governing pack names is
    told, on the pack's clock (and those it consults); nobody uses the system meanwhile."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {}
    for field, limit, required in (
        ("name", 200, "Name the AI system, as its vendor or the department calls it."),
        ("department", 200, "Name the department that will use it."),
        ("purpose", 2000, "Say what the department will use it for."),
        ("vendor", 200, None),
    ):
        try:
            fields[field] = _text(body, field, limit, required=required)
        except InvalidInput as exc:
            errors.update(exc.errors)
    for flag in ("public_facing", "pilot"):
        try:
            fields[flag] = _flag(body.get(flag), flag)
        except InvalidInput as exc:
            errors.update(exc.errors)
    categories = body.get("data_categories") or []
    if isinstance(categories, str):
        categories = [c for c in (x.strip() for x in categories.split(",")) if c]
    allowed = {c.value for c in DataCategory}
    if not isinstance(categories, list) or not set(map(str, categories)) <= allowed:
        errors["data_categories"] = f"Use some of: {', '.join(sorted(allowed))}."
    sheet = body.get("fact_sheet") or {}
    if not isinstance(sheet, Mapping) or not set(sheet) <= set(FACT_SHEET):
        errors["fact_sheet"] = f"The AI Fact Sheet's fields are: {', '.join(FACT_SHEET)}."
    if errors:
        raise InvalidInput(errors)
    existing = await by_name(fields["name"], uow=uow)
    if existing is not None and existing.approved_at is not None:
        raise Conflict(f"{existing.name} is already in the inventory of approved AI systems.")
    pack = governing(policy, fields["department"], "approval")
    if pack is None or pack.approval is None:
        raise Conflict(
            "No policy in force names who approves new AI systems for that department; "
            "ask your IT department."
        )
    rule = pack.approval
    request = ApprovalRequest(
        id=new_id(),
        **fields,
        data_categories=sorted(set(map(str, categories))),
        fact_sheet={k: str(v).strip()[:2000] for k, v in sheet.items() if str(v).strip()},
        requested_by=principal.email,
        requested_at=now,
        pack=pack.id,
        approver_role=rule.approver.value,
    )
    uow.session.add(request)
    due = deadline_since(rule.decide_within, pack, now)
    what = f"{request.name} for {request.department} ({request.purpose})"
    # The approver decides; those the pack consults are asked first, on the same clock.
    asked = [
        (
            rule.approver,
            f"Approve or refuse the use of a new AI system: {what}. Requested by "
            f"{principal.email}.",
        ),
        *(
            (
                role,
                f"You are consulted on a new AI system before {role_name(rule.approver)} "
                f"decides: {what}.",
            )
            for role in rule.consult
        ),
    ]
    for role, action in asked:
        await _obligation(
            None,
            None,
            role=role,
            due=due,
            duty=f"{APPROVAL}{request.id}",
            action=action,
            rule=f"{pack.id}/approval",
            citations=(rule.citation,),
            timezone=pack.timezone,
            uow=uow,
            policy=policy,
            now=now,
            department=request.department,
            subject_id=request.id,
        )
    uow.emit(
        ApprovalRequested(
            request_id=request.id,
            system=request.name,
            department=request.department,
            by=principal.email,
        ),
        subject=request.id,
        time=now,
    )
    return request


async def request_by_id(request_id: str, *, uow: UnitOfWork) -> ApprovalRequest:
    found = await uow.session.get(ApprovalRequest, request_id)
    if found is None:
        raise NotFound("No approval request has that id.")
    return found


async def pending_requests(*, uow: UnitOfWork) -> list[ApprovalRequest]:
    query = (
        select(ApprovalRequest)
        .where(ApprovalRequest.status == RequestStatus.PENDING)
        .order_by(col(ApprovalRequest.requested_at))
    )
    return list(await uow.session.exec(query))


async def request_deadline(request: ApprovalRequest, *, uow: UnitOfWork) -> datetime | None:
    duties = await _duties(f"{APPROVAL}{request.id}", request.id, uow=uow)
    return min((o.due_at for o in duties), default=None)


def may_approve(principal: Principal, request: ApprovalRequest) -> bool:
    return request.approver_role in {r.value for r in principal.roles}


async def decide_request(
    request: ApprovalRequest,
    principal: Principal,
    body: Mapping[str, Any],
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
) -> ApprovalRequest:
    """The approver approves (the system enters the inventory as active, and its audits are
    scheduled) or refuses, with reasons. NotFound for anyone but the approver."""
    if not may_approve(principal, request):
        raise NotFound("No approval request you may decide has that id.")
    if request.status is not RequestStatus.PENDING:
        raise Conflict("This request is already decided.")
    decision = str(body.get("decision") or "")
    if decision not in ("approve", "refuse"):
        raise InvalidInput({"decision": "Use approve or refuse."})
    reasons = str(body.get("reasons") or "").strip()
    if decision == "refuse" and not reasons:
        raise InvalidInput({"reasons": "Give the reasons for refusing, for the department."})
    pack = _pack(policy, request.pack)
    approved = decision == "approve"
    request.status = RequestStatus.APPROVED if approved else RequestStatus.REFUSED
    request.decided_by, request.decided_at, request.reasons = principal.email, now, reasons[:5000]
    system = None
    if approved:
        system = await register(
            request.name,
            uow=uow,
            now=now,
            department=request.department,
            vendor=request.vendor,
            purpose=request.purpose,
            public_facing=request.public_facing,
            pilot=request.pilot,
            approved_by=principal.email,
            approval_rule=f"{pack.id}/approval",
            data_categories=request.data_categories,
            fact_sheet=request.fact_sheet,
        )
        request.system_id = system.id
        await schedule_audit(system, uow=uow, policy=policy, now=now)
    uow.session.add(request)
    await _done(f"{APPROVAL}{request.id}", request.id, principal.email, uow=uow, now=now)
    verdict = "approved" if approved else "refused"
    assert pack.approval is not None
    await _obligation(
        None,
        system,
        role=Role.DEPARTMENT_HEAD,
        due=now + timedelta(days=1),
        duty=f"{TOLD}{request.id}",
        action=(
            f"Decision on the request to use {request.name}: {verdict} by {principal.email}"
            + (f". Reasons: {reasons}" if reasons else ".")
            + ("" if approved else " Do not use it.")
        ),
        rule=f"{pack.id}/approval",
        citations=(pack.approval.citation,),
        timezone=pack.timezone,
        uow=uow,
        policy=policy,
        now=now,
        department=request.department,
        subject_id=request.id,
    )
    uow.emit(
        ApprovalDecided(
            request_id=request.id, system=request.name, approved=approved, by=principal.email
        ),
        subject=request.id,
        time=now,
    )
    return request
