"""Pages for people: the report form and receipt, status look-up, acknowledgement, outgoing mail.

Every page works without JavaScript. Forms post back to themselves; errors come back on the form
with a summary at the top and a message beside each field.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from incidents import services
from incidents.errors import InvalidInput, NotFound
from incidents.model import Obligation, Report
from incidents.policy.presentation import describe_pack
from incidents.schemas import parse_report
from incidents.vocabulary import DataCategory, IncidentKind
from incidents.web.keys import RUNTIME
from incidents.wording import local_time, role_words

routes = web.RouteTableDef()

KIND_LABELS = {
    IncidentKind.HARM: "An AI system caused harm to a person or group",
    IncidentKind.MALFUNCTION: "An AI system failed or behaved unexpectedly",
    IncidentKind.DATA_EXPOSURE: "City data was exposed, corrupted or misused",
    IncidentKind.INACCURATE_OUTPUT: "Inaccurate or misleading results",
    IncidentKind.DISCRIMINATORY_OUTPUT: "Discriminatory or biased results",
    IncidentKind.PROHIBITED_USE: "A use the policy prohibits",
    IncidentKind.UNAUTHORIZED_TOOL: "An AI tool used without approval",
    IncidentKind.SECURITY: "A cybersecurity incident involving AI",
}
CATEGORY_LABELS = {
    DataCategory.PII: "Personal information (names, addresses, ID numbers…)",
    DataCategory.CJI: "Criminal justice information (CJIS)",
    DataCategory.PHI: "Health information (HIPAA)",
    DataCategory.CONFIDENTIAL: "Other confidential City data",
}
# Form field names for the report's fields, so an error lands beside the right input.
FIELD_IDS = {
    "kind": "kind",
    "title": "title",
    "description": "description",
    "discovered_at": "discovered_at",
    "reporter.name": "reporter_name",
    "reporter.email": "reporter_email",
    "reporter.department": "reporter_department",
    "ai_system": "ai_system",
    "data_categories": "data_categories",
}


def org_zone(request: web.Request) -> str:
    return request.app[RUNTIME].policy.packs[0].timezone


@routes.get("/")
@aiohttp_jinja2.template("home.html")
async def home(request: web.Request) -> dict[str, Any]:
    rt = request.app[RUNTIME]
    return {"packs": rt.policy.packs, "mail_to_files": not rt.settings.smtp_url}


def _form_context(
    request: web.Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    rt = request.app[RUNTIME]
    zone = org_zone(request)
    return {
        "values": values,
        "errors": {FIELD_IDS.get(k, k): v for k, v in errors.items()},
        "kinds": KIND_LABELS,
        "categories": CATEGORY_LABELS,
        "departments": sorted(d for d in rt.policy.directory.departments if d != "*"),
        "systems": sorted(rt.policy.directory.ai_systems),
        "zone": zone,
        "zone_now": datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M"),
    }


@routes.get("/report")
async def report_form(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "report_form.html", request, _form_context(request, {}, {})
    )


@routes.post("/report")
async def report_submit(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    form = await request.post()
    values = {k: str(v) for k, v in form.items() if k != "data_categories"}
    values["data_categories"] = [str(v) for v in form.getall("data_categories", [])]
    try:
        cmd = parse_report(_report_body(form, org_zone(request)))
        filed = await rt.intake.file(cmd, channel="web")
    except InvalidInput as exc:
        ctx = _form_context(request, values, exc.errors)
        return aiohttp_jinja2.render_template("report_form.html", request, ctx, status=400)
    return aiohttp_jinja2.render_template(
        "report_filed.html",
        request,
        {
            "report": filed.report,
            "receipt_code": filed.receipt_code,
            "obligations": [_obligation_view(o) for o in filed.obligations],
        },
        status=201,
    )


def _report_body(form: MultiDictProxy[Any], zone: str) -> dict[str, Any]:
    """The API's body from the form's fields; the form's time is local to the organisation."""
    discovered = str(form.get("discovered_at", "")).strip()
    if discovered:
        try:
            naive = datetime.fromisoformat(discovered)
            if naive.tzinfo is None:
                discovered = naive.replace(tzinfo=ZoneInfo(zone)).isoformat()
        except ValueError:
            pass  # left as typed: validation explains the expected form
    return {
        "kind": str(form.get("kind", "")),
        "title": str(form.get("title", "")),
        "description": str(form.get("description", "")),
        "discovered_at": discovered or None,
        "reporter": {
            "name": str(form.get("reporter_name", "")),
            "email": str(form.get("reporter_email", "")),
            "department": str(form.get("reporter_department", "")),
        },
        "ai_system": str(form.get("ai_system", "")),
        "data_categories": [str(v) for v in form.getall("data_categories", [])],
    }


def _obligation_view(o: Obligation) -> dict[str, Any]:
    return {
        "id": o.id,
        "role": role_words(o.role),
        "recipients": ", ".join(r["name"] for r in o.recipients),
        "due": local_time(o.due_at, o.timezone),
        "status": o.status,
        "late": o.late,
        "level": o.level,
        "acknowledged": local_time(o.acknowledged_at, o.timezone),
        "acknowledged_by": o.acknowledged_by,
        "rules": ", ".join(o.rules),
        "citations": o.citations,
        "interpretation": o.interpretation,
    }


@routes.get("/policies")
@aiohttp_jinja2.template("policies.html")
async def policies(request: web.Request) -> dict[str, Any]:
    """Every active pack in plain language, for staff and the public."""
    return {"packs": [describe_pack(p) for p in request.app[RUNTIME].policy.packs]}


@routes.get("/status")
@aiohttp_jinja2.template("status_form.html")
async def status_form(request: web.Request) -> dict[str, Any]:
    return {"values": {}, "error": None}


@routes.post("/status")
async def status_lookup(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    form = await request.post()
    reference, code = str(form.get("reference", "")), str(form.get("receipt_code", ""))
    try:
        async with rt.uows() as uow:
            report, obligations = await services.report_for_reporter(reference, code, uow=uow)
    except NotFound as exc:
        return aiohttp_jinja2.render_template(
            "status_form.html",
            request,
            {"values": {"reference": reference}, "error": str(exc)},
            status=404,
        )
    return aiohttp_jinja2.render_template(
        "status.html",
        request,
        {
            "report": report,
            "discovered": local_time(report.discovered_at, org_zone(request)),
            "obligations": [_obligation_view(o) for o in obligations],
        },
    )


async def _obligation_for_link(request: web.Request, token: str) -> tuple[Obligation, Report]:
    rt = request.app[RUNTIME]
    obligation_id = request.match_info["obligation_id"]
    if not services.ack_token_valid(rt.secret, obligation_id, token):
        raise NotFound("This acknowledgement link is not valid. Use the link in your email.")
    async with rt.uows() as uow:
        obligation = await uow.session.get(Obligation, obligation_id)
        if obligation is None:
            raise NotFound("This acknowledgement link is not valid. Use the link in your email.")
        report = await services.report_by_id(obligation.report_id, uow=uow)
    return obligation, report


def _ack_context(
    obligation: Obligation, report: Report, token: str, error: str | None = None
) -> dict[str, Any]:
    return {
        "o": _obligation_view(obligation),
        "people": obligation.recipients,
        "report": report,
        "discovered": local_time(report.discovered_at, obligation.timezone),
        "token": token,
        "error": error,
    }


@routes.get("/ack/{obligation_id}")
async def ack_page(request: web.Request) -> web.Response:
    """Shows the report and one button. Opening the link acknowledges nothing: mail scanners
    follow links."""
    token = request.query.get("t", "")
    obligation, report = await _obligation_for_link(request, token)
    return aiohttp_jinja2.render_template(
        "ack.html", request, _ack_context(obligation, report, token)
    )


@routes.post("/ack/{obligation_id}")
async def ack_submit(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    form = await request.post()
    token = str(form.get("t", ""))
    obligation, report = await _obligation_for_link(request, token)
    emails = [r["email"] for r in obligation.recipients]
    who = str(form.get("who", ""))
    if who not in emails:
        who = emails[0] if len(emails) == 1 else ""
    if not who:
        ctx = _ack_context(obligation, report, token, "Choose who you are, then press the button.")
        return aiohttp_jinja2.render_template("ack.html", request, ctx, status=400)
    async with rt.uows() as uow:
        done = await services.acknowledge(obligation.id, by=who, uow=uow, now=rt.now())
    return aiohttp_jinja2.render_template(
        "ack_done.html", request, {"o": _obligation_view(done), "report": report}
    )


@routes.get("/mail")
@aiohttp_jinja2.template("mail_list.html")
async def mail_list(request: web.Request) -> dict[str, Any]:
    rt = request.app[RUNTIME]
    if rt.settings.smtp_url:
        raise web.HTTPNotFound()
    folder = rt.settings.outbox_mail_dir
    messages = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:200]:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages.append(
            {"name": path.stem, "subject": msg["Subject"], "to": msg["To"], "date": msg["Date"]}
        )
    return {"messages": messages, "folder": folder.resolve()}


@routes.get("/mail/{name}")
@aiohttp_jinja2.template("mail_view.html")
async def mail_view(request: web.Request) -> dict[str, Any]:
    rt = request.app[RUNTIME]
    name = request.match_info["name"]
    path = rt.settings.outbox_mail_dir / f"{name}.eml"
    if rt.settings.smtp_url or "/" in name or name.startswith(".") or not path.exists():
        raise web.HTTPNotFound()
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "subject": msg["Subject"],
        "headers": [(k, msg[k]) for k in ("From", "To", "Date", "Message-ID")],
        "text": body.get_content() if body else "",
    }
