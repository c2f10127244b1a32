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

from incidents.kernel.errors import InvalidInput, NotFound
from incidents.kernel.vocabulary import CATEGORY_CHOICES, KIND_CHOICES
from incidents.kernel.wording import local_time
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation
from incidents.obligations.tokens import ack_token_valid
from incidents.people.permissions import Permission
from incidents.policy.presentation import describe_pack, source_page
from incidents.reports import service as reports
from incidents.reports.model import Channel, Report
from incidents.reports.schemas import parse_report
from incidents.systems import service as systems
from incidents.systems.model import SystemStatus
from incidents.web.access import requires
from incidents.web.deps import DEPS
from incidents.web.presenters import obligation_view
from incidents.web.security import throttle

routes = web.RouteTableDef()

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


@routes.get("/")
@requires(Permission.READ_POLICIES)
@aiohttp_jinja2.template("home.html")
async def home(request: web.Request) -> dict[str, Any]:
    deps = request.app[DEPS]
    return {"packs": deps.policy.packs, "mail_to_files": deps.mail_folder is not None}


async def _form_context(
    request: web.Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    deps = request.app[DEPS]
    zone = deps.zone
    async with deps.uows() as uow:
        inventory = await systems.inventory(uow=uow)
    return {
        "values": values,
        "errors": {FIELD_IDS.get(k, k): v for k, v in errors.items()},
        "kinds": KIND_CHOICES,
        "categories": CATEGORY_CHOICES,
        "departments": sorted(d for d in deps.policy.directory.departments if d != "*"),
        # The inventory (not retired), as suggestions: a tool nobody approved is still reported.
        "systems": [s.name for s in inventory if s.status is not SystemStatus.RETIRED],
        "zone": zone,
        "zone_now": datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M"),
    }


@routes.get("/report")
@requires(Permission.FILE_REPORT)
async def report_form(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "report_form.html", request, await _form_context(request, {}, {})
    )


@routes.post("/report")
@requires(Permission.FILE_REPORT)
async def report_submit(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    await throttle(request, "intake")
    form = await request.post()
    values: dict[str, Any] = {k: str(v) for k, v in form.items() if k != "data_categories"}
    values["data_categories"] = [str(v) for v in form.getall("data_categories", [])]
    try:
        cmd = parse_report(_report_body(form, deps.zone))
        filed = await deps.file_report(cmd, Channel.WEB)
    except InvalidInput as exc:
        ctx = await _form_context(request, values, exc.errors)
        return aiohttp_jinja2.render_template("report_form.html", request, ctx, status=400)
    return aiohttp_jinja2.render_template(
        "report_filed.html",
        request,
        {
            "report": filed.report,
            "receipt_code": filed.receipt_code,
            "obligations": [obligation_view(o) for o in filed.obligations],
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


@routes.get("/policies")
@requires(Permission.READ_POLICIES)
@aiohttp_jinja2.template("policies.html")
async def policies(request: web.Request) -> dict[str, Any]:
    """Every active pack in plain language, for staff and the public."""
    return {"packs": [describe_pack(p) for p in request.app[DEPS].policy.packs]}


@routes.get("/policies/{pack}/source")
@requires(Permission.READ_POLICIES)
@aiohttp_jinja2.template("policy_source.html")
async def policy_source(request: web.Request) -> dict[str, Any]:
    """A pack's source text with every passage its rules cite marked, so each "why" can link
    to the sentence it rests on."""
    for pack in request.app[DEPS].policy.packs:
        if pack.id == request.match_info["pack"]:
            return {"page": source_page(pack)}
    raise web.HTTPNotFound()


@routes.get("/status")
@requires(Permission.LOOK_UP_WITH_RECEIPT)
@aiohttp_jinja2.template("status_form.html")
async def status_form(request: web.Request) -> dict[str, Any]:
    return {"values": {}, "error": None}


@routes.post("/status")
@requires(Permission.LOOK_UP_WITH_RECEIPT)
async def status_lookup(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    await throttle(request, "lookup")
    form = await request.post()
    reference, code = str(form.get("reference", "")), str(form.get("receipt_code", ""))
    try:
        async with deps.uows() as uow:
            report, duties = await reports.report_for_reporter(reference, code, uow=uow)
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
            "discovered": local_time(report.discovered_at, deps.zone),
            "obligations": [obligation_view(o) for o in duties],
        },
    )


async def _obligation_for_link(
    request: web.Request, token: str, email: str
) -> tuple[Obligation, Report | None, dict[str, str]]:
    """The obligation a link is for, its report (none for a duty about no report), and the one
    person the link was sent to."""
    deps = request.app[DEPS]
    await throttle(request, "ack")
    obligation_id = request.match_info["obligation_id"]
    invalid = NotFound("This acknowledgement link is not valid. Use the link in your email.")
    # A link names its person (r); one sent before links did is honoured when the obligation
    # has a single recipient, who is then the one acknowledging.
    signed_for = email if email else None
    if not ack_token_valid(deps.secret, obligation_id, token, signed_for):
        raise invalid
    async with deps.uows() as uow:
        found = await obligations.obligations_by_id([obligation_id], uow=uow)
        if obligation_id not in found:
            raise invalid
        obligation = found[obligation_id]
        report = (
            await reports.report_by_id(obligation.report_id, uow=uow)
            if obligation.report_id
            else None
        )
    people = obligation.recipients
    person = next((p for p in people if p["email"].lower() == email.lower()), None)
    if not email and len(people) == 1:
        person = people[0]
    if person is None:
        raise invalid
    return obligation, report, person


def _ack_context(
    obligation: Obligation, report: Report | None, token: str, person: dict[str, str], named: str
) -> dict[str, Any]:
    """`named`: the person the link names (empty on a link from before links named one)."""
    return {
        "named": named,
        "o": obligation_view(obligation),
        "person": person,
        "report": report,
        "discovered": local_time(report.discovered_at, obligation.timezone) if report else "",
        "token": token,
    }


@routes.get("/ack/{obligation_id}")
@requires(Permission.ACKNOWLEDGE_BY_LINK)
async def ack_page(request: web.Request) -> web.Response:
    """Shows the report and one button. Opening the link acknowledges nothing: mail scanners
    follow links."""
    token, email = request.query.get("t", ""), request.query.get("r", "")
    obligation, report, person = await _obligation_for_link(request, token, email)
    return aiohttp_jinja2.render_template(
        "ack.html", request, _ack_context(obligation, report, token, person, email)
    )


@routes.post("/ack/{obligation_id}")
@requires(Permission.ACKNOWLEDGE_BY_LINK)
async def ack_submit(request: web.Request) -> web.Response:
    """Acknowledges as the person the link was sent to: nobody chooses whom they are."""
    deps = request.app[DEPS]
    form = await request.post()
    token, email = str(form.get("t", "")), str(form.get("r", ""))
    obligation, report, person = await _obligation_for_link(request, token, email)
    async with deps.uows() as uow:
        done = await obligations.acknowledge(
            obligation.id, by=person["email"], uow=uow, now=deps.now()
        )
    return aiohttp_jinja2.render_template(
        "ack_done.html", request, {"o": obligation_view(done), "report": report}
    )


@routes.get("/mail")
@requires(Permission.READ_DEMO_MAIL)
@aiohttp_jinja2.template("mail_list.html")
async def mail_list(request: web.Request) -> dict[str, Any]:
    folder = request.app[DEPS].mail_folder
    if folder is None:  # mail goes to a real server: there is nothing here to show
        raise web.HTTPNotFound()
    messages = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:200]:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages.append(
            {"name": path.stem, "subject": msg["Subject"], "to": msg["To"], "date": msg["Date"]}
        )
    return {"messages": messages, "folder": folder.resolve()}


@routes.get("/mail/{name}")
@requires(Permission.READ_DEMO_MAIL)
@aiohttp_jinja2.template("mail_view.html")
async def mail_view(request: web.Request) -> dict[str, Any]:
    folder = request.app[DEPS].mail_folder
    name = request.match_info["name"]
    if (
        folder is None
        or "/" in name
        or name.startswith(".")
        or not (folder / f"{name}.eml").exists()
    ):
        raise web.HTTPNotFound()
    path = folder / f"{name}.eml"
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    return {
        "subject": msg["Subject"],
        "headers": [(k, msg[k]) for k in ("From", "To", "Date", "Message-ID")],
        "text": body.get_content() if body else "",
    }
