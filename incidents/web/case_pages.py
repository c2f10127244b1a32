"""Pages for security staff to work security cases, without JavaScript.

- `/cases`: the security queue, soonest deadline first, filtered with a plain GET form; people
  who work cases may open one by hand for a report.
- `/cases/{reference}`: a case with its reports, the on-call page, its tasks and clocks, and its
  timeline from the record; with the forms that work it (take it, mark a task done, change the
  phase, hold or release a clock, link a report, confirm personal information).

Security roles read and work cases; auditors read them; to anyone else a case does not exist
(404). Each form posts to its own address and comes back to the case with a 303; a request the
case refuses (a phase change the plan does not allow, a hold without a reason) comes back on the
case page with the reason in an error summary, and what was typed kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import col, select

from incidents.cases import service as cases
from incidents.cases.model import PHASE_NAMES, PHASES, Case, Phase
from incidents.cases.service import CaseDetails
from incidents.kernel.errors import Conflict, DomainError, InvalidInput, NotFound
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.vocabulary import role_name
from incidents.kernel.wording import local_time
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.people.permissions import Permission, allows
from incidents.policy import PolicySet
from incidents.policy.schema import SEVERITIES
from incidents.record.model import AuditEntry
from incidents.reports import service as reports
from incidents.reports.timeline import Moment, timeline
from incidents.web import evidence
from incidents.web.access import requires, signed_in
from incidents.web.deps import DEPS
from incidents.web.presenters import task_title

routes = web.RouteTableDef()

_STATES_LENGTH = 40  # a state's name or code, as the JSON API takes it


@dataclass
class Problem:
    """Why a form on a page was refused: the error summary's lines (each linked to the field to
    fix), the messages shown at the fields, and what was typed, to show again."""

    status: int
    lines: list[tuple[str, str]]  # (message, "#field-id")
    fields: dict[str, str] = field(default_factory=dict)  # field id -> message
    values: dict[str, str] = field(default_factory=dict)  # field id -> what was typed


def _problem(
    exc: DomainError,
    *,
    ids: Mapping[str, str],
    first: str,
    values: Mapping[str, str],
) -> Problem:
    """The problem a domain error makes of a form: `ids` maps the use case's field names to the
    form's field ids; a refusal that is no one field's links to the form's `first` field."""
    if isinstance(exc, InvalidInput):
        fields = {ids.get(name, first): message for name, message in exc.errors.items()}
        return Problem(
            status=400,
            lines=[(m, f"#{i}") for i, m in fields.items()],
            fields=fields,
            values=dict(values),
        )
    status = 404 if isinstance(exc, NotFound) else 409
    return Problem(status=status, lines=[(str(exc), f"#{first}")], values=dict(values))


# --- the queue ------------------------------------------------------------------------------------


def _phase_filter(text: str | None) -> Phase | None:
    try:
        return Phase(text) if text else None
    except ValueError:
        known = ", ".join(p.value for p in Phase)
        raise InvalidInput({"phase": f"Use one of {known}."}) from None


def _role(role: str) -> str:
    """A role's name to start a sentence or a cell: 'The IT department'."""
    name = role_name(role)
    return name[:1].upper() + name[1:]


def _owner(case: Case) -> str:
    return case.owner or f"Not taken yet ({role_name(case.owner_role)})"


async def _queue(request: web.Request, problem: Problem | None = None) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    query = request.query
    filters = {
        "phase": query.get("phase", ""),
        "severity": query.get("severity", ""),
        "owner": query.get("owner", "").strip(),
    }
    phase = _phase_filter(filters["phase"])
    async with deps.uows() as uow:
        found = await cases.listed(
            uow=uow, phase=phase, severity=filters["severity"] or None, owner=filters["owner"]
        )
    rows = []
    for d in found:
        c = d.case
        due = cases.next_due(d)
        rows.append(
            {
                "reference": c.reference,
                "severity": c.severity,
                "phase": PHASE_NAMES[c.phase],
                "ai_system": c.ai_system,
                "owner": _owner(c),
                "due": local_time(due, deps.zone) if due else "Nothing due",
                "overdue": due is not None and due < deps.now(),
                "acknowledged": c.acknowledged_at is not None,
                "acknowledged_by": c.acknowledged_by,
            }
        )
    context = {
        "rows": rows,
        "filters": filters,
        "filtered": any(filters.values()),
        "phases": [(p.value, PHASE_NAMES[p]) for p in PHASES],
        "severities": SEVERITIES,
        "may_work": allows(me, Permission.WORK_SECURITY_CASES),
        "zone": deps.zone,
        "problem": problem,
        "values": problem.values if problem else {},
        "errors": problem.fields if problem else {},
    }
    status = problem.status if problem else 200
    return aiohttp_jinja2.render_template("cases.html", request, context, status=status)


@routes.get("/cases")
@requires(Permission.READ_SECURITY_CASES)
async def queue(request: web.Request) -> web.Response:
    """The security cases, soonest deadline first; filter by phase, severity and owner."""
    return await _queue(request)


@routes.post("/cases")
@requires(Permission.WORK_SECURITY_CASES)
async def open_case(request: web.Request) -> web.StreamResponse:
    """Open a case for a report by hand (or go to the case it is already in)."""
    me = signed_in(request)
    deps = request.app[DEPS]
    form = await request.post()
    reference = str(form.get("report", "")).strip()
    try:
        if not reference:
            raise InvalidInput({"report": "Give the report's reference, e.g. AI-2026-000123."})
        async with deps.uows() as uow:
            report = await reports.by_reference(reference, uow=uow)
            case = await cases.open_for_report(
                report, uow=uow, policy=deps.policy, now=deps.now(), by=me.email, force=True
            )
            assert case is not None  # forced
            opened = case.reference
    except (InvalidInput, NotFound) as exc:
        problem = _problem(
            exc,
            ids={"report": "open-report"},
            first="open-report",
            values={"open-report": reference},
        )
        return await _queue(request, problem)
    raise web.HTTPSeeOther(location=f"/cases/{opened}")


# --- one case -------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts) or "less than a minute"


def _recipients(o: Obligation) -> str:
    return ", ".join(f"{r['name']} ({r['email']})" for r in o.recipients)


def _status(o: Obligation, zone: str) -> str:
    if o.status is ObligationStatus.ACKNOWLEDGED:
        return f"Done by {o.acknowledged_by}, {local_time(o.acknowledged_at, zone)}"
    if o.held_at is not None:
        return "On hold"
    if o.status is ObligationStatus.BREACHED:
        return "Overdue"
    return "Open"


class _Words:
    """Names of a case's obligations, for its timeline."""

    def __init__(self, d: CaseDetails, policy: PolicySet) -> None:
        self.page = {o.id: o for o in d.page}
        self.tasks = {o.id: task_title(o, policy) for o in d.tasks}
        self.clocks = {o.id: o for o in d.clocks}
        self.reports = {r.id: r.reference for r in d.reports}

    def of(self, obligation_id: Any) -> str:
        key = str(obligation_id)
        if key in self.tasks:
            return f"the task “{self.tasks[key]}”"
        if key in self.page:
            return "the on-call page"
        clock = self.clocks.get(key)
        if clock is not None:
            rule = f" ({clock.rules[0]})" if clock.rules else ""
            return f"the deadline for {role_name(clock.role)}{rule}"
        return "an obligation"


def _phase_name(value: Any) -> str:
    try:
        return PHASE_NAMES[Phase(value)]
    except ValueError:
        return str(value)


def _sentence(entry: AuditEntry, words: _Words, zone: str) -> str | None:
    """The case's own entries in plain words; None for those a report's timeline words well."""
    data = entry.data
    key = str(data.get("obligation_id", ""))
    match entry.action:
        case "security_case.opened":
            how = "by a policy rule" if data.get("by") == "system" else f"by {data.get('by')}"
            report = words.reports.get(str(data.get("report_id")), "a report")
            return (
                f"Security case {data.get('reference', '')} opened {how} for {report}, "
                f"severity {data.get('severity', '')}"
            )
        case "security_case.report_linked":
            report = words.reports.get(str(data.get("report_id")), "a report")
            return f"{report} linked to the case by {data.get('by', '')}"
        case "security_case.acknowledged":
            return f"Case taken by {data.get('by', '')}: the page stops"
        case "security_case.phase_changed":
            before, after = _phase_name(data.get("before")), _phase_name(data.get("after"))
            reason = f". Reason: {data['reason']}" if data.get("reason") else ""
            return f"Phase moved from {before.lower()} to {after.lower()}{reason}"
        case "security_case.evidence_added":
            return (
                f"Evidence added: {data.get('filename', '')} ({data.get('size', '')} bytes, "
                f"SHA-256 {data.get('sha256', '')})"
            )
        case "obligation.held":
            return f"Clock held on {words.of(key)}. Reason: {data.get('reason', '')}"
        case "obligation.released":
            held = _duration(float(data.get("held_seconds") or 0))
            due = data.get("due_at")
            now_due = f"; now due {local_time(datetime.fromisoformat(due), zone)}" if due else ""
            return f"Hold on {words.of(key)} released after {held}{now_due}"
        case "obligation.opened" if key in words.tasks:
            return f"Task set: {words.tasks[key]}"
        case "obligation.opened" if key in words.page:
            step = words.page[key]
            who = ", ".join(r["name"] for r in step.recipients)
            return f"Paged {who}" + (" (escalation)" if step.level else "")
        case "obligation.acknowledged" if key in words.tasks:
            return f"Task done: {words.tasks[key]}, by {data.get('by', '')}"
        case _:
            return None


async def _case_timeline(
    d: CaseDetails, *, uow: UnitOfWork, policy: PolicySet, zone: str
) -> list[dict[str, Any]]:
    """The record's entries about the case and its reports, oldest first."""
    duties = [*d.page, *d.tasks, *d.clocks]
    words = _Words(d, policy)
    moments: dict[int, Moment] = {}
    for report in d.reports:
        for m in await timeline(report, duties, uow=uow, case_work=True):
            moments[m.seq] = m
    subjects = [*words.reports, d.case.id]
    entries = await uow.session.exec(
        select(AuditEntry).where(col(AuditEntry.subject).in_(subjects))
    )
    for e in entries:
        said = _sentence(e, words, zone)
        if said is not None or e.seq not in moments:
            what = said or e.action.replace("_", " ").replace(".", ": ")
            moments[e.seq] = Moment(at=e.at, what=what, actor=e.actor, seq=e.seq)
    return [
        {"at": local_time(m.at, zone), "what": m.what, "actor": m.actor, "seq": m.seq}
        for _, m in sorted(moments.items())
    ]


async def _case_page(
    request: web.Request, reference: str, problem: Problem | None = None
) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    zone = deps.zone
    async with deps.uows() as uow:
        case = await cases.by_reference(reference, uow=uow)
        d = await cases.details(case, uow=uow)
        moments = await _case_timeline(d, uow=uow, policy=deps.policy, zone=zone)
        files = await evidence.case_evidence(case, uow=uow, zone=zone)
    now = deps.now()
    c = d.case
    following = PHASES.index(c.phase) + 1
    context = {
        **files,
        "case": c,
        "phase": PHASE_NAMES[c.phase],
        "closed": c.phase is Phase.CLOSED,
        "owner": _owner(c),
        "opened": local_time(c.opened_at, zone),
        "opened_by": "a policy rule" if c.opened_by == "system" else c.opened_by,
        "acknowledged": local_time(c.acknowledged_at, zone),
        "closed_at": local_time(c.closed_at, zone),
        "reports": [
            {
                "reference": r.reference,
                "title": r.title,
                "kind": r.kind.replace("_", " ").capitalize(),
                "discovered": local_time(r.discovered_at, zone),
                "data": ", ".join(r.data_categories).upper() or "None named",
            }
            for r in d.reports
        ],
        "page": [
            {
                "step": o.level + 1,
                "role": _role(o.role),
                "recipients": _recipients(o),
                "paged": local_time(o.created_at, zone),
                "due": local_time(o.due_at, zone),
                "status": o.status.value,
                "acknowledged_by": o.acknowledged_by,
                "acknowledged": local_time(o.acknowledged_at, zone),
            }
            for o in d.page
        ],
        "tasks": [
            {
                "id": o.id,
                "title": task_title(o, deps.policy),
                "action": o.action or "",
                "owner": _role(o.role),
                "due": local_time(o.due_at, zone),
                "overdue": o.status is not ObligationStatus.ACKNOWLEDGED and o.due_at < now,
                "status": _status(o, zone),
                "open": o.status is not ObligationStatus.ACKNOWLEDGED,
                "required": o.duty not in c.optional_tasks,
                "citations": o.citations,
            }
            for o in d.tasks
        ],
        "clocks": [
            {
                "id": o.id,
                "rule": o.rules[0] if o.rules else "",
                "role": _role(o.role),
                "recipients": ", ".join(r["name"] for r in o.recipients),
                "due": local_time(o.due_at, zone),
                "status": _status(o, zone),
                "open": o.status is not ObligationStatus.ACKNOWLEDGED,
                "held": o.held_at is not None,
                "held_since": local_time(o.held_at, zone),
                "hold_reason": o.hold_reason or "",
                "held_by": o.held_by or "",
                "held_before": _duration(o.held_seconds) if o.held_seconds else "",
            }
            for o in d.clocks
        ],
        "phases": [(p.value, PHASE_NAMES[p]) for p in PHASES if p is not c.phase],
        "next_phase": PHASES[following].value if following < len(PHASES) else "",
        "timeline": moments,
        "may_work": allows(me, Permission.WORK_SECURITY_CASES),
        "problem": problem,
        "values": problem.values if problem else {},
        "errors": problem.fields if problem else {},
        "reason_length": obligations.REASON_LENGTH,
    }
    status = problem.status if problem else 200
    return aiohttp_jinja2.render_template("case.html", request, context, status=status)


@routes.get("/cases/{reference}")
@requires(Permission.READ_SECURITY_CASES)
async def case_page(request: web.Request) -> web.Response:
    return await _case_page(request, request.match_info["reference"])


# --- working a case -------------------------------------------------------------------------------

Action = Callable[[Case, UnitOfWork], Awaitable[object]]


async def _work(
    request: web.Request,
    action: Action,
    *,
    ids: Mapping[str, str],
    first: str,
    values: Mapping[str, str] = {},
    anchor: str = "",
) -> web.StreamResponse:
    """Do `action` to the case, then back to its page (303); a refusal comes back on the page,
    with what was typed."""
    reference = request.match_info["reference"]
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        # No such case: NotFound, a plain 404 page (as for anyone who may not see cases).
        canonical = (await cases.by_reference(reference, uow=uow)).reference
    try:
        async with deps.uows() as uow:  # a refusal rolls back all of the action
            await action(await cases.by_reference(reference, uow=uow), uow)
    except (InvalidInput, Conflict, NotFound) as exc:
        problem = _problem(exc, ids=ids, first=first, values=values)
        return await _case_page(request, canonical, problem)
    raise web.HTTPSeeOther(location=f"/cases/{canonical}{anchor}")


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


@routes.post("/cases/{reference}/acknowledge")
@requires(Permission.WORK_SECURITY_CASES)
async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Take the case: the on-call page stops for everyone, and the record says who."""
    me = signed_in(request)
    now = request.app[DEPS].now()

    async def take(case: Case, uow: UnitOfWork) -> object:
        return await cases.acknowledge(case, me, uow=uow, now=now)

    return await _work(request, take, ids={}, first="take", anchor="#facts")


@routes.post("/cases/{reference}/transition")
@requires(Permission.WORK_SECURITY_CASES)
async def transition(request: web.Request) -> web.StreamResponse:
    """Move the case to another phase; refused (409, on the page) when the plan does not allow
    it: closed, skipping or going back without a reason, required tasks still open."""
    me = signed_in(request)
    now = request.app[DEPS].now()
    form = await _form(request)
    to_text, reason = form.get("to", ""), form.get("reason", "")
    values = {"phase-to": to_text, "phase-reason": reason}

    async def move(case: Case, uow: UnitOfWork) -> object:
        try:
            to = Phase(to_text)
        except ValueError:
            raise InvalidInput({"to": "Choose the phase to move the case to."}) from None
        return await cases.transition(case, to, reason, by=me.email, uow=uow, now=now)

    ids = {"to": "phase-to", "reason": "phase-reason"}
    return await _work(request, move, ids=ids, first="phase-to", values=values, anchor="#phase")


@routes.post("/cases/{reference}/tasks/{task_id}/complete")
@requires(Permission.WORK_SECURITY_CASES)
async def complete_task(request: web.Request) -> web.StreamResponse:
    me = signed_in(request)
    now = request.app[DEPS].now()
    task_id = request.match_info["task_id"]

    async def done(case: Case, uow: UnitOfWork) -> object:
        return await cases.complete_task(case, task_id, by=me.email, uow=uow, now=now)

    return await _work(request, done, ids={}, first="tasks", anchor="#tasks")


@routes.post("/cases/{reference}/clocks/{clock_id}/hold")
@requires(Permission.WORK_SECURITY_CASES)
async def hold(request: web.Request) -> web.StreamResponse:
    """Hold a clock (a law-enforcement request to delay notice, say); the reason is recorded."""
    me = signed_in(request)
    now = request.app[DEPS].now()
    clock_id = request.match_info["clock_id"]
    reason = (await _form(request)).get("reason", "")
    field_id = f"hold-reason-{clock_id}"

    async def stop(case: Case, uow: UnitOfWork) -> object:
        clock = await cases.clock_of(case, clock_id, uow=uow)
        return await obligations.hold(clock.id, reason=reason, by=me.email, uow=uow, now=now)

    return await _work(
        request,
        stop,
        ids={"reason": field_id},
        first=field_id,
        values={field_id: reason},
        anchor="#clocks",
    )


@routes.post("/cases/{reference}/clocks/{clock_id}/release")
@requires(Permission.WORK_SECURITY_CASES)
async def release(request: web.Request) -> web.StreamResponse:
    """End a clock's hold: its deadline moves on by the time held."""
    me = signed_in(request)
    now = request.app[DEPS].now()
    clock_id = request.match_info["clock_id"]

    async def go(case: Case, uow: UnitOfWork) -> object:
        clock = await cases.clock_of(case, clock_id, uow=uow)
        return await obligations.release(clock.id, by=me.email, uow=uow, now=now)

    return await _work(request, go, ids={}, first="clocks", anchor="#clocks")


@routes.post("/cases/{reference}/reports")
@requires(Permission.WORK_SECURITY_CASES)
async def link_report(request: web.Request) -> web.StreamResponse:
    """Add a further report to the case."""
    me = signed_in(request)
    now = request.app[DEPS].now()
    reference = (await _form(request)).get("report", "").strip()

    async def link(case: Case, uow: UnitOfWork) -> object:
        if not reference:
            raise InvalidInput({"report": "Give the report's reference, e.g. AI-2026-000123."})
        return await cases.link_report(case, reference, by=me.email, uow=uow, now=now)

    return await _work(
        request,
        link,
        ids={"report": "link-report"},
        first="link-report",
        values={"link-report": reference},
        anchor="#reports",
    )


def _residents(text: str) -> int | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(
            {"residents_affected": "Give the number of residents affected as a whole number."}
        )
    return int(text)


def _states(text: str) -> list[str]:
    states = [s.strip() for s in text.split(",") if s.strip()]
    if any(len(s) > _STATES_LENGTH for s in states):
        raise InvalidInput(
            {"states": "Give each state as its name or code, separated by commas, e.g. WI, CA."}
        )
    return states


@routes.post("/cases/{reference}/personal-information")
@requires(Permission.WORK_SECURITY_CASES)
async def personal_information(request: web.Request) -> web.StreamResponse:
    """Personal information was acquired: the statutory breach clocks of the active packs open."""
    me = signed_in(request)
    now = request.app[DEPS].now()
    form = await _form(request)
    affected, states = form.get("residents_affected", ""), form.get("states", "")

    async def confirm(case: Case, uow: UnitOfWork) -> object:
        return await cases.confirm_personal_information(
            case,
            residents_affected=_residents(affected),
            states=_states(states),
            by=me.email,
            uow=uow,
            now=now,
        )

    return await _work(
        request,
        confirm,
        ids={"residents_affected": "pi-residents", "states": "pi-states"},
        first="pi-residents",
        values={"pi-residents": affected, "pi-states": states},
        anchor="#clocks",
    )
