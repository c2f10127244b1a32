"""Use cases of AI systems: the inventory, reviews that open from reports, and the decider's
decisions (halt, an express exception, a phase-out plan) with their clocks.

A system has at most one open review: a report that would open another joins it instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from incidents.kernel.actor import Principal
from incidents.kernel.errors import Conflict, InvalidInput, NotFound
from incidents.kernel.ids import new_id
from incidents.kernel.unit_of_work import UnitOfWork, UnitOfWorkFactory
from incidents.kernel.vocabulary import Role, role_name
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.policy import Plan, PlannedObligation, PolicySet
from incidents.policy.directory import Directory
from incidents.policy.engine import deadline_for
from incidents.policy.reviews import PlannedReview, review_for
from incidents.policy.schema import EscalationLevel, Pack
from incidents.reports import service as reports
from incidents.reports.model import Report
from incidents.systems.events import ReviewDecided, ReviewOpened, SystemStatusChanged
from incidents.systems.model import (
    DECISION,
    EXCEPTION,
    MILESTONE,
    TOLD,
    AISystem,
    Decision,
    Review,
    ReviewStatus,
    SystemStatus,
)

# The longest window a threshold looks back over; earlier reports never count.
LOOKBACK = timedelta(days=366)
MILESTONE_REMINDER = timedelta(days=1)  # the owner is reminded a day before
MILESTONE_ESCALATION = timedelta(days=1)  # the decider is told a day after a missed one


class IncompletePlan(InvalidInput):
    """A phase-out plan that misses what the policy asks of it; the web answers 422."""


# --- the inventory ---------------------------------------------------------------------------


async def by_id(system_id: str, *, uow: UnitOfWork) -> AISystem:
    found = await uow.session.get(AISystem, system_id)
    if found is None:
        raise NotFound("No AI system has that id.")
    return found


async def by_name(name: str, *, uow: UnitOfWork) -> AISystem | None:
    query = select(AISystem).where(func.lower(AISystem.name) == name.strip().lower())
    return (await uow.session.exec(query)).first()


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
    if approved_by and found.approved_at is None:
        found.approved_by, found.approved_at = approved_by, now
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


# --- reviews ---------------------------------------------------------------------------------


def _pack(policy: PolicySet, pack_id: str) -> Pack:
    return next(p for p in policy.packs if p.id == pack_id)


async def report_arrived(
    report: Report, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> Review | None:
    """A report about a system: link it to the inventory, and open (or join) a review when a
    rule or the pack's threshold says so."""
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
    report: Report,
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    now: datetime,
) -> Review:
    """Open a review (or add the report to the one already open): the decider is told, on a
    clock, and the system is under review (halted at once where the pack says so)."""
    current = (
        await uow.session.exec(
            select(Review).where(Review.system_id == system.id, Review.status == ReviewStatus.OPEN)
        )
    ).first()
    if current is not None:
        if report.id not in current.report_ids:
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
        report_ids=[report.id],
        citations=[c.model_dump(exclude_none=True) for c in planned.citations],
    )
    uow.session.add(review)
    assert pack.sunset is not None
    due, _, _ = deadline_for(pack.sunset.decide_within, pack, reports.facts_of(report), since=now)
    await _obligation(
        report,
        role=planned.decider,
        due=due,
        duty=f"{DECISION}{review.id}",
        action=(
            f"Decide on {system.name}: halt it, grant an express exception with conditions "
            f"and an expiry, or approve a phase-out plan. Why it is under review: "
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
    report: Report,
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
) -> None:
    planned = PlannedObligation(
        role=role,
        recipients=policy.directory.resolve(role, report.reporter_department, now),
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
    await obligations.open_all(uow, obligations.planned(plan, report.id, now), now)


# --- decisions -------------------------------------------------------------------------------


async def review_by_id(review_id: str, *, uow: UnitOfWork) -> Review:
    found = await uow.session.get(Review, review_id)
    if found is None:
        raise NotFound("No review has that id.")
    return found


def may_decide(principal: Principal, review: Review) -> bool:
    return review.decider_role in {r.value for r in principal.roles}


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
    clock that reopens the review when it lapses), or a phase-out plan (its milestones become
    clocks; the system is retired when the last is done). NotFound for anyone but the decider."""
    if not may_decide(principal, review):
        raise NotFound("No review you may decide has that id.")
    if review.status is not ReviewStatus.OPEN:
        raise Conflict("This review is already decided.")
    try:
        decision = Decision(str(body.get("decision")))
    except ValueError:
        raise InvalidInput({"decision": "Use halt, exception or phase_out."}) from None
    system = await by_id(review.system_id, uow=uow)
    pack = _pack(policy, review.pack)
    zone = pack.timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    first = await reports.report_by_id(review.report_ids[0], uow=uow)
    rule = f"{pack.id}/sunset"
    citations = [c for c in (pack.sunset.citation,)] if pack.sunset else []
    if decision is Decision.HALT:
        _status(system, SystemStatus.HALTED, f"halted by {principal.email}", uow=uow, now=now)
        told = f"{system.name} is halted by decision of {principal.email}: stop using it."
    elif decision is Decision.EXCEPTION:
        conditions = str(body.get("conditions") or "").strip()
        if not conditions:
            raise InvalidInput({"conditions": "An express exception states its conditions."})
        expires = _day(body.get("expires_on"), "expires_on", today)
        review.conditions, review.expires_at = conditions[:5000], _end_of(expires, zone)
        await _obligation(
            first,
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
    # The decision clock is done, and the department is told.
    for o in await obligations.obligations_of(first.id, uow=uow):
        if o.duty == f"{DECISION}{review.id}" and o.status is not ObligationStatus.ACKNOWLEDGED:
            await obligations.acknowledge(o.id, by=principal.email, uow=uow, now=now)
    await _obligation(
        first,
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
    report = await reports.report_by_id(old.report_ids[0], uow=uow)
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
    prefix = f"{MILESTONE}{review.id}:"
    rows = await uow.session.exec(
        select(Obligation).where(
            Obligation.report_id == review.report_ids[0],
            col(Obligation.duty).startswith(prefix),
            Obligation.level == 0,
        )
    )
    if any(o.status is not ObligationStatus.ACKNOWLEDGED for o in rows):
        return False
    system = await by_id(review.system_id, uow=uow)
    _status(system, SystemStatus.RETIRED, "the last phase-out milestone is done", uow=uow, now=now)
    return True


def decider_name(review: Review) -> str:
    return role_name(review.decider_role)
