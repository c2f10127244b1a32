"""The JSON API: /api/v1/reports."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from incidents.cases import service as cases
from incidents.kernel.errors import InvalidInput
from incidents.obligations import service as obligations
from incidents.people.permissions import Permission, allows
from incidents.reports import service as reports
from incidents.reports.intake import DuplicateKey
from incidents.reports.model import Channel
from incidents.reports.schemas import NewReport, parse_report
from incidents.reports.service import Filed
from incidents.systems import service as systems
from incidents.web.access import caller, requires, signed_in
from incidents.web.deps import DEPS, WebDeps
from incidents.web.presenters import obligation_json, report_json
from incidents.web.security import throttle

routes = web.RouteTableDef()


async def json_body(request: web.Request) -> Any:
    """The request's JSON body: 415 unless it is sent as application/json (so a page on
    another site cannot post it as a plain form), 400 naming the fault if it is not JSON."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            reason="Send the body as JSON, with the header Content-Type: application/json."
        )
    raw = await request.read()
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, a 5,000-digit number
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInput({"body": f"The body is not valid JSON ({detail}).".strip()}) from None


@routes.post("/api/v1/reports")
@requires(Permission.FILE_REPORT)
async def file_report(request: web.Request) -> web.Response:
    """File a report. With an Idempotency-Key, a retry with the same key and body gets the
    first answer (`Idempotent-Replayed: true`) and files nothing; the same key with another
    body is refused with 422. A key holds for 24 hours."""
    deps = request.app[DEPS]
    await throttle(request, "intake")
    body = await json_body(request)
    cmd = await with_system(deps, parse_report(body))
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _filed(await deps.file_report(cmd, Channel.API))
    keyed = reports.idempotency(deps.secret, _checked_key(key), body)
    for _ in range(2):  # a retry racing the first finds it on the second look
        async with deps.uows() as uow:
            earlier = await reports.by_idempotency_key(keyed.key, uow=uow, now=deps.now())
            if earlier is not None:
                if earlier.request_hash != keyed.request_hash:
                    raise web.HTTPUnprocessableEntity(
                        reason="This Idempotency-Key was already used for a different report. "
                        "Use a new key for a new report."
                    )
                duties = await obligations.obligations_of(earlier.id, uow=uow)
                first = [o for o in duties if o.level == 0 and o.created_at == earlier.reported_at]
                replay = Filed(report=earlier, obligations=first, receipt_code=keyed.receipt_code)
                return _filed(replay, replayed=True)
        try:
            return _filed(await deps.file_report(cmd, Channel.API, keyed))
        except DuplicateKey:
            continue
    raise web.HTTPConflict(reason="A report with this Idempotency-Key is being filed; retry.")


async def with_system(deps: WebDeps, cmd: NewReport) -> NewReport:
    """A report that names its system by id gets the inventory's name for it."""
    async with deps.uows() as uow:
        return await systems.with_name(cmd, uow=uow)


def _checked_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            {"Idempotency-Key": "Use 1 to 255 visible ASCII characters, such as a UUID."}
        )
    return key


def _filed(filed: Filed, *, replayed: bool = False) -> web.Response:
    headers = {"Location": f"/api/v1/reports/{filed.report.reference}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.json_response(
        {
            "id": filed.report.id,
            "reference": filed.report.reference,
            "receipt_code": filed.receipt_code,
            "obligations": [obligation_json(o) for o in filed.obligations],
        },
        status=201,
        headers=headers,
    )


@routes.get("/api/v1/reports/{reference}")
@requires(Permission.LOOK_UP_WITH_RECEIPT)
async def get_report(request: web.Request) -> web.Response:
    """A report, for whoever holds its receipt code, or (with a token) for its reporter, the
    people a policy named for it, and auditors; 404 for anyone else."""
    await throttle(request, "lookup")
    principal = caller(request)
    reference = request.match_info["reference"]
    case = None
    async with request.app[DEPS].uows() as uow:
        if principal is not None:
            reads_cases = allows(principal, Permission.READ_SECURITY_CASES)
            report, duties = await cases.report_for(
                reference, principal, reads_cases=reads_cases, uow=uow
            )
            if reads_cases:
                case = await cases.case_of_report(report.id, uow=uow)
        else:
            code = request.query.get("receipt_code", "")
            report, duties = await reports.report_for_reporter(reference, code, uow=uow)
    shown = report_json(report, duties)
    if case is not None:  # only security roles and auditors learn that a case exists
        shown["case"] = {"reference": case.reference, "phase": case.phase.value}
    return web.json_response(shown)


@routes.get("/api/v1/reports")
@requires(Permission.READ_OWN)
async def list_reports(request: web.Request) -> web.Response:
    """The newest reports the caller may see (a token is needed)."""
    await throttle(request, "lookup")
    principal = signed_in(request)
    async with request.app[DEPS].uows() as uow:
        visible = await reports.reports_for(principal, uow=uow)
    return web.json_response({"reports": [report_json(r, duties) for r, duties in visible]})


@routes.post("/api/v1/obligations/{obligation_id}/acknowledge")
@requires(Permission.ACKNOWLEDGE_OWN)
async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge one of the caller's own obligations (a token is needed); 404 for any other."""
    await throttle(request, "ack")
    principal = signed_in(request)
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        done = await obligations.acknowledge_as(
            request.match_info["obligation_id"], principal, uow=uow, now=deps.now()
        )
    return web.json_response(obligation_json(done))


@routes.post("/api/v1/reports/{reference}/classification")
@requires(Permission.READ_OWN)
async def classify(request: web.Request) -> web.Response:
    """A triager (a person the report's obligations name) gives a report that came without a
    kind its kind: {"kind": ..., "data_categories": [...], "ai_system": ...}. The rules for that
    kind apply from the original discovery; 409 once classified; 404 for anyone else."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a JSON object with the kind."})
    async with deps.uows() as uow:
        report, _ = await reports.classify(
            request.match_info["reference"], me, body, uow=uow, policy=deps.policy, now=deps.now()
        )
        duties = await obligations.obligations_of(report.id, uow=uow)
    return web.json_response(report_json(report, reports.told(duties)))
