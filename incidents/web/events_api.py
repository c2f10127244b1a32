"""`POST /api/v1/events`: a report another system publishes, as a CloudEvent in structured JSON
mode (the embedded default's way in; with Kafka, the intake topic does the same)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from incidents.intake import published
from incidents.kernel.errors import InvalidInput
from incidents.people.permissions import Permission
from incidents.reports.schemas import parse_report
from incidents.web.access import requires
from incidents.web.api import json_body, with_system
from incidents.web.deps import DEPS
from incidents.web.presenters import obligation_json
from incidents.web.security import throttle

routes = web.RouteTableDef()

STRUCTURED = "application/cloudevents+json"


def read_event(body: Any) -> published.Published:
    """The CloudEvent's attributes and data; InvalidInput naming each one at fault."""
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a CloudEvent: a JSON object with its attributes."})
    if body.get("specversion") != "1.0":
        raise InvalidInput({"specversion": 'The service reads CloudEvents 1.0: send "1.0".'})
    event = published.Published(
        id=str(body.get("id") or ""),
        source=str(body.get("source") or ""),
        type=str(body.get("type") or ""),
        data=body.get("data"),
    )
    published.check(event)
    return event


@routes.post("/api/v1/events")
@requires(Permission.FILE_REPORT)
async def publish(request: web.Request) -> web.Response:
    """File the report an event carries, once per event (its source and id): the same event
    again answers 200 with the report filed the first time, and files nothing."""
    deps = request.app[DEPS]
    await throttle(request, "intake")
    if request.content_type == STRUCTURED:
        # The structured mode's own media type is JSON too; read it as the API reads JSON.
        request = request.clone(headers={**request.headers, "Content-Type": "application/json"})
    event = read_event(await json_body(request))
    report = await with_system(deps, parse_report(event.data))
    for _ in range(2):  # a second delivery racing the first finds it on the second look
        try:
            async with deps.uows() as uow:
                found, filed = await published.file_published(
                    event, report, uow=uow, policy=deps.policy, now=deps.now()
                )
        except IntegrityError:
            continue
        location = {"Location": f"/api/v1/reports/{found.reference}"}
        if filed is None:
            return web.json_response(
                {"id": found.id, "reference": found.reference, "duplicate": True},
                headers=location,
            )
        return web.json_response(
            {
                "id": found.id,
                "reference": found.reference,
                "receipt_code": filed.receipt_code,
                "obligations": [obligation_json(o) for o in filed.obligations],
            },
            status=201,
            headers=location,
        )
    raise web.HTTPConflict(reason="This event is being filed by another request; retry.")
