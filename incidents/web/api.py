"""The JSON API: /api/v1/reports."""

from __future__ import annotations

import json

from aiohttp import web

from incidents.kernel.errors import InvalidInput
from incidents.reports import service as reports
from incidents.reports.model import Channel
from incidents.reports.schemas import parse_report
from incidents.web.deps import DEPS
from incidents.web.presenters import obligation_json, report_json

routes = web.RouteTableDef()


@routes.post("/api/v1/reports")
async def file_report(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    raw = await request.read()
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput({"body": f"The body is not valid JSON ({exc})."}) from None
    cmd = parse_report(body)
    filed = await deps.file_report(cmd, Channel.API)
    return web.json_response(
        {
            "id": filed.report.id,
            "reference": filed.report.reference,
            "receipt_code": filed.receipt_code,
            "obligations": [obligation_json(o) for o in filed.obligations],
        },
        status=201,
        headers={"Location": f"/api/v1/reports/{filed.report.reference}"},
    )


@routes.get("/api/v1/reports/{reference}")
async def get_report(request: web.Request) -> web.Response:
    async with request.app[DEPS].uows() as uow:
        report, obligations = await reports.report_for_reporter(
            request.match_info["reference"], request.query.get("receipt_code", ""), uow=uow
        )
    return web.json_response(report_json(report, obligations))
