"""Pages for people signed in: their own work, a report with its timeline, and administration.

- `/me`: the reports a person filed and the obligations addressed to them, each open one with
  an "Acknowledge" button that acknowledges as them and nobody else.
- `/reports/{reference}`: a report they may see (404 otherwise), its obligations, and its
  timeline from the record.
- `/reports`: every report, for auditors.
- `/admin/roles`: who may do what (the matrix in `incidents.people.permissions`), who holds
  each policy role (the directory), and the accounts with their grants.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from incidents.cases import service as cases
from incidents.kernel.vocabulary import (
    CATEGORY_CHOICES,
    KIND_CHOICES,
    IncidentKind,
    Role,
    role_name,
)
from incidents.kernel.wording import local_time
from incidents.obligations import service as obligations
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.people import permissions
from incidents.people import service as people
from incidents.people.permissions import Audience, Permission
from incidents.reports import service as reports
from incidents.reports.timeline import timeline
from incidents.web.access import requires, signed_in
from incidents.web.deps import DEPS
from incidents.web.presenters import obligation_view
from incidents.web.security import throttle

routes = web.RouteTableDef()


def _addressed_to(email: str, o: Obligation) -> bool:
    return any(r["email"].lower() == email for r in o.recipients)


@routes.get("/me")
@requires(Permission.READ_OWN)
@aiohttp_jinja2.template("me.html")
async def my_work(request: web.Request) -> dict[str, Any]:
    me = signed_in(request)
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        visible = await reports.reports_for(me, uow=uow)
        duties = await obligations.duties_without_report(me.email, uow=uow)
    filed = [r for r, _ in visible if r.reporter_email.lower() == me.email]
    waiting = [
        (report, obligation_view(o))
        for report, duties in visible
        for o in duties
        if _addressed_to(me.email, o) and o.status is not ObligationStatus.ACKNOWLEDGED
    ]
    return {
        "filed": filed,
        "waiting": waiting,
        "duties": [obligation_view(o) for o in duties],
        "roles": sorted(role_name(r) for r in me.roles),
        "grants": sorted(me.grants),
        "reads_everything": me.reads_everything,
    }


@routes.get("/reports")
@requires(Permission.READ_EVERYTHING)
@aiohttp_jinja2.template("reports.html")
async def all_reports(request: web.Request) -> dict[str, Any]:
    me = signed_in(request)
    async with request.app[DEPS].uows() as uow:
        visible = await reports.reports_for(me, uow=uow)
    return {"reports": [r for r, _ in visible]}


@routes.get("/reports/{reference}")
@requires(Permission.READ_OWN)
@aiohttp_jinja2.template("report.html")
async def report_page(request: web.Request) -> dict[str, Any]:
    """A report for someone who may see it; any other reference answers 404."""
    me = signed_in(request)
    deps = request.app[DEPS]
    await throttle(request, "lookup")
    async with deps.uows() as uow:
        report, duties = await cases.report_for(
            request.match_info["reference"],
            me,
            reads_cases=permissions.allows(me, Permission.READ_SECURITY_CASES),
            uow=uow,
        )
        moments = await timeline(report, duties, uow=uow)
    named = any(_addressed_to(me.email, o) for o in duties)
    return {
        "report": report,
        "may_classify": named and report.kind == IncidentKind.UNCLASSIFIED,
        "kinds": [(k.value, label) for k, label in KIND_CHOICES.items()],
        "categories": [(c.value, label) for c, label in CATEGORY_CHOICES.items()],
        "discovered": local_time(report.discovered_at, deps.zone),
        "obligations": [obligation_view(o) for o in duties],
        "mine": {
            o.id
            for o in duties
            if _addressed_to(me.email, o) and o.status is not ObligationStatus.ACKNOWLEDGED
        },
        "timeline": [
            {"at": local_time(m.at, deps.zone), "what": m.what, "actor": m.actor, "seq": m.seq}
            for m in moments
        ],
    }


@routes.post("/reports/{reference}/classification")
@requires(Permission.READ_OWN)
async def classify(request: web.Request) -> web.StreamResponse:
    """A triager gives a report that came without a kind (by email) its kind; 404 for anyone
    its obligations do not name."""
    me = signed_in(request)
    deps = request.app[DEPS]
    posted = await request.post()
    body = {
        "kind": str(posted.get("kind", "")),
        "data_categories": [str(v) for v in posted.getall("data_categories", [])],
        "ai_system": str(posted.get("ai_system", "")),
    }
    reference = request.match_info["reference"]
    async with deps.uows() as uow:
        await reports.classify(reference, me, body, uow=uow, policy=deps.policy, now=deps.now())
    raise web.HTTPSeeOther(location=f"/reports/{reference}#timeline")


@routes.post("/obligations/{obligation_id}/acknowledge")
@requires(Permission.ACKNOWLEDGE_OWN)
async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Acknowledge one of the signed-in person's own obligations, as them; 404 for any other."""
    me = signed_in(request)
    deps = request.app[DEPS]
    await throttle(request, "ack")
    async with deps.uows() as uow:
        done = await obligations.acknowledge_as(
            request.match_info["obligation_id"], me, uow=uow, now=deps.now()
        )
        if done.report_id is None:  # a duty about no report is listed on /me
            raise web.HTTPSeeOther(location="/me#acknowledged")
        report = await reports.report_by_id(done.report_id, uow=uow)
    raise web.HTTPSeeOther(location=f"/reports/{report.reference}#acknowledged")


@routes.get("/admin/roles")
@requires(Permission.SEE_ROLES)
@aiohttp_jinja2.template("admin_roles.html")
async def roles(request: web.Request) -> dict[str, Any]:
    deps = request.app[DEPS]
    directory = deps.policy.directory
    holders = []
    for role in Role:
        people_in_role = {
            (p.name, str(p.email))
            for scope in [directory.roles, *directory.departments.values()]
            for p in scope.get(role, [])
        }
        if people_in_role:
            holders.append({"role": role_name(role), "people": sorted(people_in_role)})
    async with deps.uows() as uow:
        accounts = await people.accounts(uow=uow)
    return {
        "audiences": list(Audience),
        "rows": permissions.matrix_rows(),
        "security_roles": sorted(role_name(r) for r in permissions.SECURITY_ROLES),
        "deciding_roles": sorted(role_name(r) for r in permissions.DECIDING_ROLES),
        "holders": holders,
        "accounts": [
            {
                "email": a.email,
                "grants": ", ".join(a.grants) or "none",
                "roles": ", ".join(sorted(role_name(r) for r in directory.roles_held_by(a.email)))
                or "none",
                "last": local_time(a.last_sign_in_at, deps.zone) or "never",
                "local": a.password_hash is not None,
                "codes": a.totp_secret is not None,
            }
            for a in accounts
        ],
        "single_sign_on": deps.single_sign_on,
    }
