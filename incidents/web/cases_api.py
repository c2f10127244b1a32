"""The JSON API of security cases: /api/v1/cases.

Security roles work cases; auditors read them. To anyone else a case does not exist (404).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from incidents.cases import service as cases
from incidents.cases.model import Case, Phase
from incidents.kernel.errors import InvalidInput
from incidents.obligations import service as obligations
from incidents.people.permissions import Permission
from incidents.policy.schema import SEVERITIES
from incidents.reports import service as reports
from incidents.web.access import requires, signed_in
from incidents.web.api import json_body
from incidents.web.deps import DEPS
from incidents.web.presenters import case_json

routes = web.RouteTableDef()


def _field(body: Any, name: str, kind: type, *, required: bool = True) -> Any:
    """One field of a JSON object body, of the type asked; InvalidInput naming it otherwise."""
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a JSON object."})
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise InvalidInput({name: f"Give {name} as {kind.__name__}."})
    if isinstance(value, str):
        _printable(value, name)
    return value


def _printable(value: str, name: str) -> str:
    """Text the database can keep: no NUL or other control characters (but line breaks)."""
    if any(c < " " and c not in "\n\r\t" for c in value):
        raise InvalidInput({name: f"Remove the control characters from {name}."})
    return value


async def _answer(request: web.Request, case: Case) -> web.Response:
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        found = await cases.details(case, uow=uow)
    return web.json_response(case_json(found, deps.policy))


@routes.get("/api/v1/cases")
@requires(Permission.READ_SECURITY_CASES)
async def list_cases(request: web.Request) -> web.Response:
    """The cases, soonest deadline first; filter with ?phase=, ?severity=, ?owner=."""
    deps = request.app[DEPS]
    phase_text = request.query.get("phase")
    try:
        phase = Phase(phase_text) if phase_text else None
    except ValueError:
        known = ", ".join(p.value for p in Phase)
        raise InvalidInput({"phase": f"Use one of {known}."}) from None
    severity = request.query.get("severity") or None
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput({"severity": f"Use one of {', '.join(SEVERITIES)}."})
    owner = _printable(request.query.get("owner", ""), "owner") or None
    async with deps.uows() as uow:
        found = await cases.listed(uow=uow, phase=phase, severity=severity, owner=owner)
    return web.json_response({"cases": [case_json(d, deps.policy) for d in found]})


@routes.post("/api/v1/cases")
@requires(Permission.WORK_SECURITY_CASES)
async def open_case(request: web.Request) -> web.Response:
    """Open a case for a report by hand, {"report": "AI-2026-000123"}; the report's case if it
    is already in one."""
    me = signed_in(request)
    deps = request.app[DEPS]
    reference = _field(await json_body(request), "report", str)
    async with deps.uows() as uow:
        report = await reports.by_reference(reference, uow=uow)
        case = await cases.open_for_report(
            report, uow=uow, policy=deps.policy, now=deps.now(), by=me.email, force=True
        )
        assert case is not None  # forced
        found = await cases.details(case, uow=uow)
    return web.json_response(
        case_json(found, deps.policy),
        status=201,
        headers={"Location": f"/api/v1/cases/{case.reference}"},
    )


@routes.get("/api/v1/cases/{reference}")
@requires(Permission.READ_SECURITY_CASES)
async def get_case(request: web.Request) -> web.Response:
    async with request.app[DEPS].uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/reports")
@requires(Permission.WORK_SECURITY_CASES)
async def link_report(request: web.Request) -> web.Response:
    """Add a further report to the case, {"report": "AI-2026-000124"}."""
    me = signed_in(request)
    deps = request.app[DEPS]
    reference = _field(await json_body(request), "report", str)
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        await cases.link_report(case, reference, by=me.email, uow=uow, now=deps.now())
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/acknowledge")
@requires(Permission.WORK_SECURITY_CASES)
async def acknowledge(request: web.Request) -> web.Response:
    """Take the case: the on-call page stops for everyone, and the record says who."""
    me = signed_in(request)
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        await cases.acknowledge(case, me, uow=uow, now=deps.now())
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/transitions")
@requires(Permission.WORK_SECURITY_CASES)
async def transition(request: web.Request) -> web.Response:
    """Move the case to another phase, {"to": "contain", "reason": "..."}; 409 when the move is
    not allowed (closed, skipping or going back without a reason, required tasks open)."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    to_text = _field(body, "to", str)
    reason = _field(body, "reason", str, required=False)
    try:
        to = Phase(to_text)
    except ValueError:
        known = ", ".join(p.value for p in Phase)
        raise InvalidInput({"to": f"Use one of {known}."}) from None
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        await cases.transition(case, to, reason, by=me.email, uow=uow, now=deps.now())
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/tasks/{task_id}/complete")
@requires(Permission.WORK_SECURITY_CASES)
async def complete_task(request: web.Request) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        await cases.complete_task(
            case, request.match_info["task_id"], by=me.email, uow=uow, now=deps.now()
        )
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/personal-information")
@requires(Permission.WORK_SECURITY_CASES)
async def personal_information(request: web.Request) -> web.Response:
    """Personal information was acquired, {"residents_affected": N, "states": ["WI"]}: the
    statutory breach clocks of the active packs open."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    affected = _field(body, "residents_affected", int, required=False)
    states = _field(body, "states", list, required=False) or []
    if not all(isinstance(s, str) and 1 <= len(s) <= 40 and s.isprintable() for s in states):
        raise InvalidInput({"states": 'Give states as a list of names or codes, e.g. ["WI"].'})
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        await cases.confirm_personal_information(
            case,
            residents_affected=affected,
            states=states,
            by=me.email,
            uow=uow,
            now=deps.now(),
        )
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/clocks/{clock_id}/hold")
@requires(Permission.WORK_SECURITY_CASES)
async def hold(request: web.Request) -> web.Response:
    """Hold a clock, {"reason": "..."} (a law-enforcement request to delay notice, a scope
    determination); on release its deadline moves by the time held."""
    me = signed_in(request)
    deps = request.app[DEPS]
    reason = _field(await json_body(request), "reason", str)
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        clock = await cases.clock_of(case, request.match_info["clock_id"], uow=uow)
        await obligations.hold(clock.id, reason=reason, by=me.email, uow=uow, now=deps.now())
    return await _answer(request, case)


@routes.post("/api/v1/cases/{reference}/clocks/{clock_id}/release")
@requires(Permission.WORK_SECURITY_CASES)
async def release(request: web.Request) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        case = await cases.by_reference(request.match_info["reference"], uow=uow)
        clock = await cases.clock_of(case, request.match_info["clock_id"], uow=uow)
        await obligations.release(clock.id, by=me.email, uow=uow, now=deps.now())
    return await _answer(request, case)
