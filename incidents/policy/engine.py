"""The policy engine: report + packs + directory + now -> the obligations the report creates.

Pure and deterministic: no I/O, no clock reads. The caller passes `now`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.policy.calendar import BusinessCalendar, calendar_for
from incidents.policy.deadlines import after_elapsed, business_days_walk, require_aware
from incidents.policy.directory import Directory, Person
from incidents.policy.schema import (
    Citation,
    Deadline,
    EscalationLevel,
    Follow,
    Pack,
    Rule,
    Trigger,
    When,
)


@dataclass(frozen=True)
class ReportFacts:
    """What the engine needs to know of a report."""

    kind: IncidentKind
    department: str
    ai_system: str
    discovered_at: datetime
    reported_at: datetime
    data_categories: frozenset[DataCategory] = frozenset()
    affected_count: int | None = None  # people whose data was acquired, once a case knows it


@dataclass(frozen=True)
class PlannedObligation:
    """Someone (a role) must be told of the report by `due_at`."""

    role: Role
    recipients: tuple[Person, ...]
    due_at: datetime
    rules: tuple[str, ...]  # "pack/rule", every rule that obliges this role
    citations: tuple[Citation, ...]
    timezone: str
    interpretation: str | None = None
    reminders: tuple[datetime, ...] = ()
    escalation: tuple[EscalationLevel, ...] = ()
    late: bool = False
    action: str | None = None  # what the people told must do, beyond reading
    duty: str = ""  # "" for being told of the report; else the duty a rule names
    holidays: tuple[str, ...] = ()  # the days off that moved the deadline, in words


@dataclass(frozen=True)
class Plan:
    obligations: tuple[PlannedObligation, ...]
    opens: frozenset[Follow] = field(default_factory=frozenset)


def plan_for(
    report: ReportFacts,
    packs: Sequence[Pack],
    directory: Directory,
    now: datetime,
    *,
    trigger: Trigger = "report",
    since: datetime | None = None,
    holidays: Collection[date] = (),
) -> Plan:
    """The obligations `report` creates under `packs`, as of `now`.

    `trigger` picks the rules that open on a later event (a case confirming that personal
    information was acquired); `since` is when that event happened, the start of their clocks.
    With no matching rule, a report opens its triage obligation so nothing goes unseen.

    `holidays` are the deployment's own days off; each pack adds its jurisdiction's public
    holidays and its organisation's closures. One obligation per role and duty: two rules that
    oblige one role to do different things give two obligations.
    """
    now = require_aware(now, "now")
    by_duty: dict[tuple[Role, str], PlannedObligation] = {}
    opens: set[Follow] = set()
    applicable = [p for p in packs if pack_applies(p, report)]
    calendars = {p.id: calendar_for(p, holidays) for p in applicable}
    for pack in applicable:
        for rule in pack.rules:
            if rule.trigger != trigger or not matches(rule.when, report, directory):
                continue
            opens.update(rule.opens)
            for role in rule.notify:
                planned = _plan(pack, rule, role, report, directory, now, since, calendars[pack.id])
                key = (role, planned.duty)
                by_duty[key] = _merge(by_duty.get(key), planned)
    if not by_duty and trigger == "report":
        # A department pack knows its department best, so its triage goes before the city's.
        for pack in sorted(applicable, key=lambda p: not p.departments):
            if pack.triage is not None:
                triage = Rule(
                    id="triage",
                    title="No rule matched: triage",
                    notify=pack.triage.notify,
                    within=pack.triage.within,
                    action=pack.triage.action,
                    citation=pack.triage.citation,
                )
                for role in triage.notify:
                    planned = _plan(
                        pack, triage, role, report, directory, now, since, calendars[pack.id]
                    )
                    by_duty[(role, "")] = _merge(by_duty.get((role, "")), planned)
                break
    ordered = sorted(by_duty.values(), key=lambda o: (o.due_at, o.role.value, o.duty))
    return Plan(obligations=tuple(ordered), opens=frozenset(opens))


def deadline_since(deadline: Deadline, pack: Pack, since: datetime) -> datetime:
    """The due time a deadline gives, counting from `since`: for a duty about no report (an
    approval request, a review opened by an audit or by hand)."""
    # Only `since` counts: the facts of a report never reach a deadline counted from it.
    facts = ReportFacts(
        kind=IncidentKind.MALFUNCTION,
        department="",
        ai_system="",
        discovered_at=since,
        reported_at=since,
    )
    return deadline_for(deadline, pack, facts, since=since)[0]


def deadline_for(
    deadline: Deadline,
    pack: Pack,
    report: ReportFacts,
    *,
    since: datetime | None = None,
    calendar: BusinessCalendar | None = None,
) -> tuple[datetime, str | None, tuple[str, ...]]:
    """The due time a deadline gives for a report, the interpretation used, if any, and the
    holidays that moved it later, in words (e.g. 'Memorial Day, Mon 25 May 2026')."""
    note = None
    if deadline.interpretation is not None:
        interp = pack.interpretations[deadline.interpretation]
        word = deadline.interpretation.replace("_", " ")
        origin = "the confirmation" if since is not None else None
        note = f"“{word}” read as {describe(interp.deadline, origin=origin)}: {interp.note}"
        deadline = interp.deadline.model_copy(update={"from_": deadline.from_})
    if since is not None:
        start = since
    elif deadline.from_ == "report":
        start = report.reported_at
    else:
        start = report.discovered_at
    if deadline.after is not None:
        return after_elapsed(start, deadline.after), note, ()
    assert deadline.business_days is not None  # the schema guarantees exactly one form
    calendar = calendar if calendar is not None else calendar_for(pack)
    hh, mm = (int(x) for x in pack.business_hours_end.split(":"))
    due, skipped = business_days_walk(
        start, deadline.business_days, zone=pack.zone, end_of_day=time(hh, mm), holidays=calendar
    )
    moved = tuple(f"{calendar.name_of(day)}, {day:%a %-d %b %Y}" for day in skipped)
    return due, note, moved


def describe(deadline: Deadline, *, origin: str | None = None) -> str:
    """Plain words for a deadline, e.g. '24 hours from discovery'; `origin` names what the clock
    counts from when it is not the deadline's own (a later confirmation)."""
    if origin is None:
        origin = "discovery" if deadline.from_ == "discovery" else "the report"
    if deadline.after is not None:
        return f"{_duration_words(deadline.after)} from {origin}"
    if deadline.business_days is not None:
        n = deadline.business_days
        if n == 0:
            return "the end of the same business day"
        if n == 1:
            return f"the end of the next business day after {origin}"
        return f"the end of {n} business day{'s' if n != 1 else ''} after {origin}"
    return f"“{deadline.interpretation}”"


def _duration_words(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    if minutes % (60 * 24) == 0 and minutes >= 60 * 24 * 2:
        return f"{minutes // (60 * 24)} days"
    if minutes % 60 == 0:
        h = minutes // 60
        return f"{h} hour{'s' if h != 1 else ''}"
    return f"{minutes} minutes"


def _plan(
    pack: Pack,
    rule: Rule,
    role: Role,
    report: ReportFacts,
    directory: Directory,
    now: datetime,
    since: datetime | None,
    calendar: BusinessCalendar,
) -> PlannedObligation:
    due, note, moved = deadline_for(rule.within, pack, report, since=since, calendar=calendar)
    reminders = tuple(sorted(due - r for r in rule.reminders if due - r > now))
    return PlannedObligation(
        role=role,
        recipients=directory.resolve(role, report.department),
        due_at=due,
        rules=(f"{pack.id}/{rule.id}",),
        citations=(rule.citation,),
        timezone=pack.timezone,
        interpretation=note,
        reminders=reminders,
        escalation=tuple(rule.escalation),
        late=due <= now,
        action=rule.action,
        duty=rule.duty or "",
        holidays=moved,
    )


def _merge(old: PlannedObligation | None, new: PlannedObligation) -> PlannedObligation:
    """Two rules oblige one role to the same duty: the earlier deadline wins, and every
    citation and action is kept."""
    if old is None:
        return new
    first, second = (old, new) if old.due_at <= new.due_at else (new, old)
    return PlannedObligation(
        role=first.role,
        recipients=first.recipients,
        due_at=first.due_at,
        rules=first.rules + tuple(r for r in second.rules if r not in first.rules),
        citations=first.citations + tuple(c for c in second.citations if c not in first.citations),
        timezone=first.timezone,
        interpretation=first.interpretation,
        reminders=first.reminders,
        escalation=first.escalation or second.escalation,
        late=first.late,
        action="\n\n".join(dict.fromkeys(a for a in (first.action, second.action) if a)) or None,
        duty=first.duty,
        holidays=first.holidays,
    )


def pack_applies(pack: Pack, report: ReportFacts) -> bool:
    if not pack.departments:
        return True
    return _in(report.department, pack.departments)


def matches(when: When, report: ReportFacts, directory: Directory) -> bool:
    if when.kinds and report.kind not in when.kinds:
        return False
    if when.data_categories and not report.data_categories.intersection(when.data_categories):
        return False
    if when.departments and not _in(report.department, when.departments):
        return False
    if when.min_affected is not None and (
        report.affected_count is None or report.affected_count < when.min_affected
    ):
        return False
    system = directory.system(report.ai_system)
    if when.system.public_facing is not None and system.public_facing != when.system.public_facing:
        return False
    return when.system.pilot is None or system.pilot == when.system.pilot


def _in(name: str, names: Sequence[str]) -> bool:
    wanted = name.strip().casefold()
    return any(n.casefold() == wanted for n in names)
