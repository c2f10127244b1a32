"""Which security case a report opens: the response plan's owner, the severity, the tasks, and
the on-call page. Pure, like the engine: `now` is an argument.

A case opens when a rule the report matches says `opens: [security_case]`. The packs whose
rules opened it bring their `response_plan`: its owner, its severity rules (the highest that
matches wins), and its tasks (those whose `when` matches), each planned like an obligation with
its own deadline, reminders and escalation, counted from the moment the case opens. The page
follows the directory's on-call chain: the first step's people now, each later step when the
one before has waited its time unacknowledged.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from incidents.kernel.vocabulary import Role
from incidents.policy.calendar import calendar_for
from incidents.policy.directory import Directory
from incidents.policy.engine import (
    PlannedObligation,
    ReportFacts,
    deadline_for,
    matches,
    pack_applies,
)
from incidents.policy.schema import SEVERITIES, Citation, EscalationLevel, Pack, Severity

PAGE_DUTY = "case-page"  # the obligation that pages on-call until someone acknowledges the case
TASK_DUTY = "case-task:"  # + "pack/task": an obligation that is a task of the response plan
# With no on-call roster, the response plan's owner is paged and has this long to answer.
UNROSTERED_WAIT = timedelta(hours=1)


@dataclass(frozen=True)
class PlannedCase:
    plans: tuple[str, ...]  # the response plans' titles, e.g. "AI Incident Response Plan"
    owner: Role
    severity: Severity
    because: tuple[str, ...]  # why the severity is what it is, in plain words
    rules: tuple[str, ...]  # "pack/rule": the rules that opened it
    citations: tuple[Citation, ...]
    page: PlannedObligation
    tasks: tuple[PlannedObligation, ...]
    optional: tuple[str, ...] = ()  # duties of the tasks the plan does not require to close


def case_for(
    report: ReportFacts,
    packs: Sequence[Pack],
    directory: Directory,
    now: datetime,
    *,
    holidays: Collection[date] = (),
    force: bool = False,
) -> PlannedCase | None:
    """The case `report` opens under `packs`, as of `now`; None when no rule opens one.

    With `force` (security staff open a case by hand), a case is planned even when no rule
    opens one, under every applicable pack that has a response plan."""
    opening = [
        (pack, rule)
        for pack in packs
        if pack_applies(pack, report) and pack.response_plan is not None
        for rule in pack.rules
        if "security_case" in rule.opens
        and rule.trigger == "report"
        and matches(rule.when, report, directory)
    ]
    if opening:
        plans = list({pack.id: pack for pack, _ in opening}.values())  # in pack order, once each
    elif force:
        plans = [p for p in packs if pack_applies(p, report) and p.response_plan is not None]
    else:
        return None
    if not plans:
        return None
    severity: Severity = max(
        (p.response_plan.default_severity for p in plans if p.response_plan),
        key=SEVERITIES.index,
    )
    because: list[str] = []
    tasks: list[PlannedObligation] = []
    optional: list[str] = []
    citations: list[Citation] = [rule.citation for _, rule in opening]
    for pack in plans:
        plan = pack.response_plan
        assert plan is not None
        citations.append(plan.citation)
        for raise_ in plan.severity:
            if matches(raise_.when, report, directory):
                because.append(raise_.because)
                if SEVERITIES.index(raise_.severity) > SEVERITIES.index(severity):
                    severity = raise_.severity
        calendar = calendar_for(pack, holidays)
        for task in plan.tasks:
            if not matches(task.when, report, directory):
                continue
            due, note, moved = deadline_for(task.within, pack, report, since=now, calendar=calendar)
            if not task.required:
                optional.append(f"{TASK_DUTY}{pack.id}/{task.id}")
            tasks.append(
                PlannedObligation(
                    role=task.owner,
                    recipients=directory.resolve(task.owner, report.department, now),
                    due_at=due,
                    rules=(f"{pack.id}/{task.id}",),
                    citations=(task.citation,),
                    timezone=pack.timezone,
                    interpretation=note,
                    reminders=tuple(sorted(due - r for r in task.reminders if due - r > now)),
                    escalation=tuple(task.escalation),
                    action=f"{task.title}. {task.action}",
                    duty=f"{TASK_DUTY}{pack.id}/{task.id}",
                    holidays=moved,
                )
            )
    first = plans[0]
    assert first.response_plan is not None
    return PlannedCase(
        plans=tuple(p.response_plan.title for p in plans if p.response_plan),
        owner=first.response_plan.owner,
        severity=severity,
        because=tuple(dict.fromkeys(because)),
        rules=tuple(f"{pack.id}/{rule.id}" for pack, rule in opening),
        citations=tuple(dict.fromkeys(citations)),
        page=_page(first.response_plan.owner, first, report, directory, now, citations[0]),
        tasks=tuple(sorted(tasks, key=lambda t: (t.due_at, t.duty))),
        optional=tuple(optional),
    )


def _page(
    owner: Role,
    pack: Pack,
    report: ReportFacts,
    directory: Directory,
    now: datetime,
    citation: Citation,
) -> PlannedObligation:
    """The on-call chain as one obligation: its first step now, the rest as escalation levels
    (each opened when the step before has waited its time unacknowledged)."""
    roster = directory.on_call
    if roster is None:
        steps = [EscalationLevel(notify=[owner], within=UNROSTERED_WAIT)]
    else:
        rounds = roster.chain * (1 + roster.repeat)
        steps = [EscalationLevel(notify=s.notify, within=s.wait) for s in rounds]
    first, rest = steps[0], steps[1:]
    people = tuple(p for role in first.notify for p in directory.resolve(role, "", now))
    return PlannedObligation(
        role=first.notify[0],
        recipients=tuple(dict.fromkeys(people)),
        due_at=now + first.within,
        rules=("on-call/page",),
        citations=(citation,),
        timezone=pack.timezone,
        escalation=tuple(rest),
        action="Acknowledge the security case, so the page stops, and take or assign it.",
        duty=PAGE_DUTY,
    )
