"""Pages of the AI system inventory and its sunset reviews, without JavaScript.

- `/systems`: the public inventory: every approved system, with its department, vendor,
  purpose, whether residents use it, whether it is a pilot, and its status (what Milwaukee's
  SOP 682 B.3.d and the transparency principles ask to be published). A system met only in a
  report, never approved, is not on it.
- `/systems/{id}`: one system with its reviews (for anyone signed in), and for the decider the
  form that decides an open review: halt, an express exception with conditions and an expiry,
  or a phase-out plan with its sections and milestones.
- `/reviews/{id}/decision`: where that form posts; a refusal comes back on the system page with
  an error summary (422 for a plan that misses what the policy asks, 400 for other input).
- `/reviews`: the decider's queue of open reviews, soonest decision deadline first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlmodel import col, select

from incidents.kernel.errors import Conflict, Forbidden, InvalidInput
from incidents.kernel.vocabulary import CATEGORY_CHOICES, Role, role_name
from incidents.kernel.wording import local_time
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.people.permissions import Permission, allows
from incidents.policy.schema import PUBLIC_FIELDS
from incidents.systems import service as systems
from incidents.systems.model import (
    DECISION,
    FACT_SHEET,
    AISystem,
    Decision,
    Review,
    ReviewStatus,
)
from incidents.systems.service import IncompletePlan
from incidents.web.access import requires, signed_in
from incidents.web.deps import DEPS

routes = web.RouteTableDef()

MILESTONE_ROWS = 3  # milestone rows the decision form offers

STATUS_NAMES = {
    "active": "In use",
    "unregistered": "Not approved",
    "under_review": "Under review",
    "halted": "Halted",
    "excepted": "In use by express exception",
    "phasing_out": "Being phased out",
    "retired": "Retired",
}

DECISIONS = [
    (Decision.HALT.value, "Halt it", "Stop using the system now."),
    (
        Decision.EXCEPTION.value,
        "Grant an express exception",
        "Keep it in use on the conditions you state, until the date you give; the review "
        "opens again when the exception lapses.",
    ),
    (
        Decision.PHASE_OUT.value,
        "Approve a phase-out plan",
        "Retire it gradually, where stopping at once would disrupt services; each milestone "
        "becomes a deadline for its owner.",
    ),
    (
        Decision.CONTINUE.value,
        "Keep it in use",
        "The review found no reason to stop it (an audit passed, say): give your reasons; its "
        "next audit is scheduled where the policy asks for audits.",
    ),
]
DECISION_NAMES = {value: name for value, name, _ in DECISIONS}
DECISION_DONE = {
    Decision.HALT.value: "Halted",
    Decision.EXCEPTION.value: "Express exception granted",
    Decision.PHASE_OUT.value: "Phase-out plan approved",
    Decision.CONTINUE.value: "Kept in use",
}

# The sections a phase-out plan addresses (the Sunset Procedures' points), as the form asks them.
SECTIONS = [
    ("data_ownership", "Ownership of the data", "Who owns the data the system holds or made."),
    ("data_access", "Future access to the data", "How the City keeps access to it afterwards."),
    ("portability", "Portability", "Of the model, the algorithm and the data."),
    ("impact_services", "Impact on services", "On the services that rely on the system."),
    ("impact_users", "Impact on users", "On the staff who use it, and how they are helped."),
    ("impact_residents", "Impact on residents", "On residents, and how they are told."),
]
SECTION_NAMES = {key: name for key, name, _ in SECTIONS}


@dataclass
class Problem:
    """Why the decision form was refused: the error summary's lines (each linked to its field),
    the messages at the fields, and what was typed, to show again."""

    status: int
    lines: list[tuple[str, str]]
    fields: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def _status(system: AISystem) -> str:
    return STATUS_NAMES.get(system.status.value, system.status.value)


def _opened_by(text: str) -> str:
    """How a review opened, in plain words."""
    if text.startswith("rule:"):
        return f"a report matching the policy rule {text.removeprefix('rule:')}"
    if text.startswith("threshold:"):
        return f"a pattern of reports (the threshold of the {text.removeprefix('threshold:')} pack)"
    if text.startswith("audit:"):
        return f"its periodic audit (the {text.removeprefix('audit:')} pack)"
    return text


def _role(role: str) -> str:
    name = role_name(role)
    return name[:1].upper() + name[1:]


# --- the public inventory -------------------------------------------------------------------------


FIELD_NAMES = {
    "department": "Department",
    "vendor": "Vendor",
    "purpose": "Purpose",
    "data_categories": "Data it uses",
    "public_facing": "Used by the public",
    "pilot": "Pilot",
    "approved_on": "Approved on",
    "next_review_on": "Next audit",
}


def _field(system: AISystem, name: str, zone: str) -> str:
    if name in ("public_facing", "pilot"):
        return _yes_no(bool(getattr(system, name)))
    if name == "data_categories":
        return ", ".join(c.upper() for c in system.data_categories) or "None stated"
    if name == "approved_on":
        return local_time(system.approved_at, zone).split(",")[0] if system.approved_at else ""
    if name == "next_review_on":
        return local_time(system.next_review_at, zone) if system.next_review_at else "None set"
    return str(getattr(system, name) or "") or "Not stated"


@routes.get("/systems")
@requires(Permission.READ_POLICIES)
@aiohttp_jinja2.template("systems.html")
async def inventory(request: web.Request) -> dict[str, Any]:
    """The approved AI systems, for anyone, with the fields the packs in force choose to
    publish (Pack.public_fields)."""
    deps = request.app[DEPS]
    chosen = {f for p in deps.policy.packs for f in p.public_fields}
    columns = [f for f in PUBLIC_FIELDS if f in chosen]
    async with deps.uows() as uow:
        found = await systems.inventory(uow=uow, approved_only=True)
    return {
        "columns": [FIELD_NAMES[c] for c in columns],
        "systems": [
            {
                "id": s.id,
                "name": s.name,
                "cells": [_field(s, c, deps.zone) for c in columns],
                "status": _status(s),
            }
            for s in found
        ],
    }


# --- one system, and deciding its review ----------------------------------------------------------


def _plan_view(plan: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not plan:
        return None
    milestones = plan.get("milestones")
    return {
        "sections": [
            (name, str(plan.get(key, "")))
            for key, name, _ in SECTIONS
            if str(plan.get(key, "")).strip()
        ],
        "milestones": [
            {
                "title": str(m.get("title", "")),
                "due_on": str(m.get("due_on", "")),
                "owner": _role(str(m.get("owner_role", ""))),
            }
            for m in (milestones if isinstance(milestones, list) else [])
            if isinstance(m, Mapping)
        ],
    }


def _review_view(review: Review, zone: str, may_decide: bool) -> dict[str, Any]:
    decision = review.decision.value if review.decision else ""
    return {
        "id": review.id,
        "open": review.status is ReviewStatus.OPEN,
        "opened": local_time(review.opened_at, zone),
        "opened_by": _opened_by(review.opened_by),
        "reason": review.reason,
        "reports": len(review.report_ids),
        "decider": _role(review.decider_role),
        "decision": DECISION_DONE.get(decision, decision),
        "decided_by": review.decided_by or "",
        "decided": local_time(review.decided_at, zone),
        "conditions": review.conditions or "",
        "expires": local_time(review.expires_at, zone),
        "plan": _plan_view(review.plan),
        "may_decide": may_decide and review.status is ReviewStatus.OPEN,
    }


async def _system_page(
    request: web.Request, system_id: str, problem: Problem | None = None
) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    zone = deps.zone
    async with deps.uows() as uow:
        system = await systems.by_id(system_id, uow=uow)
        reviews = await systems.reviews_of(system.id, uow=uow)
        history = await systems.status_history(system.id, uow=uow)
        about = await systems.reports_about(system.id, uow=uow)
        milestones = {r.id: await systems.milestones_of(r, uow=uow) for r in reviews if r.plan}
    references = {r.id: (r.reference, r.title) for r in about}
    views = [
        {
            **_review_view(r, zone, systems.may_decide(me, r, deps.policy)),
            "led_by": [references[i] for i in r.report_ids if i in references],
            "milestone_status": [
                f"Done, by {o.acknowledged_by}"
                if o.status is ObligationStatus.ACKNOWLEDGED
                else ("Overdue" if o.status is ObligationStatus.BREACHED else "Open")
                for o in milestones.get(r.id, [])
            ],
        }
        for r in reversed(reviews)
    ]
    may_open = allows(me, Permission.DECIDE_AI_SYSTEMS)
    context = {
        "system": {
            "id": system.id,
            "name": system.name,
            "department": system.department or "Not stated",
            "vendor": system.vendor or "Not stated",
            "purpose": system.purpose or "Not stated",
            "public_facing": _yes_no(system.public_facing),
            "pilot": _yes_no(system.pilot),
            "status": _status(system),
            "approved": (
                f"{local_time(system.approved_at, zone)}, by {system.approved_by}"
                + (f" (under {system.approval_rule})" if system.approval_rule else "")
                if system.approved_at
                else "Not approved: met in a report, not in the inventory"
            ),
            "data_categories": ", ".join(c.upper() for c in system.data_categories)
            or "None stated",
            "next_review": local_time(system.next_review_at, zone)
            if system.next_review_at
            else "None scheduled",
            "fact_sheet": [
                (question, system.fact_sheet[key])
                for key, question in FACT_SHEET.items()
                if system.fact_sheet.get(key)
            ],
        },
        "may_open_review": may_open and not any(v["open"] for v in views),
        "reviews": views,
        "history": [
            {
                "at": local_time(h.at, zone),
                "before": STATUS_NAMES.get(h.before, h.before),
                "after": STATUS_NAMES.get(h.after, h.after),
                "why": h.why,
            }
            for h in history
        ],
        "reports": [
            {"reference": r.reference, "title": r.title, "kind": r.kind.replace("_", " ")}
            for r in about
        ],
        "deciding": next((v for v in views if v["may_decide"]), None),
        "decisions": DECISIONS,
        "sections": SECTIONS,
        "milestone_rows": range(1, MILESTONE_ROWS + 1),
        "roles": [(r.value, _role(r)) for r in Role],
        "problem": problem,
        "values": problem.values if problem else {},
        "errors": problem.fields if problem else {},
    }
    status = problem.status if problem else 200
    return aiohttp_jinja2.render_template("system.html", request, context, status=status)


@routes.get("/systems/{system_id}")
@requires(Permission.READ_OWN)
async def system_page(request: web.Request) -> web.Response:
    return await _system_page(request, request.match_info["system_id"])


def _field_id(name: str, rows: list[int]) -> str:
    """The form's field for a name `decide` refuses: `rows` maps a milestone's place in the
    body to its row on the form (empty rows are not sent)."""
    if name == "decision":
        return "decision"
    if name in ("conditions", "expires_on", "plan", "reasons"):
        return {
            "reasons": "reasons",
            "conditions": "conditions",
            "expires_on": "expires-on",
            "plan": f"plan-{SECTIONS[0][0]}",
        }[name]
    if name in SECTION_NAMES:
        return f"plan-{name}"
    if name == "milestones":
        return "milestone-1-title"
    if name.startswith("milestones["):
        index, _, part = name.removeprefix("milestones[").partition("]")
        row = rows[int(index)] if index.isdigit() and int(index) < len(rows) else 1
        suffix = {".due_on": "due", ".owner_role": "owner"}.get(part, "title")
        return f"milestone-{row}-{suffix}"
    return "decision"


def _body(form: Mapping[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The decision form as the body `decide` takes, and the form row of each milestone sent."""
    milestones, rows = [], []
    for n in range(1, MILESTONE_ROWS + 1):
        title = form.get(f"milestone-{n}-title", "").strip()
        due_on = form.get(f"milestone-{n}-due", "").strip()
        owner = form.get(f"milestone-{n}-owner", "").strip()
        if title or due_on or owner:
            milestones.append({"title": title, "due_on": due_on, "owner_role": owner})
            rows.append(n)
    plan: dict[str, Any] = {key: form.get(f"plan-{key}", "") for key, _, _ in SECTIONS}
    plan["milestones"] = milestones
    body = {
        "decision": form.get("decision", ""),
        "reasons": form.get("reasons", ""),
        "conditions": form.get("conditions", ""),
        "expires_on": form.get("expires-on", ""),
        "plan": plan,
    }
    return body, rows


@routes.post("/reviews/{review_id}/decision")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def decide(request: web.Request) -> web.StreamResponse:
    """The decider's decision on an open review; 404 for anyone else, as if there were none."""
    me = signed_in(request)
    deps = request.app[DEPS]
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str) and k != "csrf"}
    body, rows = _body(form)
    async with deps.uows() as uow:
        # No such review, or not this person's to decide: NotFound, a plain 404 page.
        review = await systems.review_by_id(request.match_info["review_id"], uow=uow)
        if not systems.may_decide(me, review, deps.policy):
            raise web.HTTPNotFound()
        system_id = review.system_id
    try:
        async with deps.uows() as uow:  # a refusal rolls back all of the decision
            review = await systems.review_by_id(review.id, uow=uow)
            await systems.decide(review, me, body, uow=uow, policy=deps.policy, now=deps.now())
    except InvalidInput as exc:
        fields: dict[str, str] = {}
        for name, message in exc.errors.items():
            fields.setdefault(_field_id(name, rows), message)
        problem = Problem(
            status=422 if isinstance(exc, IncompletePlan) else 400,
            lines=[(m, f"#{i}") for i, m in fields.items()],
            fields=fields,
            values=form,
        )
        return await _system_page(request, system_id, problem)
    except (Conflict, Forbidden) as exc:
        status = 403 if isinstance(exc, Forbidden) else 409
        problem = Problem(status=status, lines=[(str(exc), "#decision")], values=form)
        return await _system_page(request, system_id, problem)
    raise web.HTTPSeeOther(location=f"/systems/{system_id}#review-{review.id}")


@routes.post("/systems/{system_id}/reviews")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def open_review(request: web.Request) -> web.StreamResponse:
    """Open a review by hand, with a reason; the policy's decider is told."""
    me = signed_in(request)
    deps = request.app[DEPS]
    form = await request.post()
    system_id = request.match_info["system_id"]
    reason = str(form.get("reason", ""))
    try:
        async with deps.uows() as uow:
            system = await systems.by_id(system_id, uow=uow)
            review = await systems.open_by_hand(
                system, me, reason, uow=uow, policy=deps.policy, now=deps.now()
            )
    except InvalidInput as exc:
        problem = Problem(
            status=400,
            lines=[(m, "#reason") for m in exc.errors.values()],
            fields={"reason": exc.errors.get("reason", "")},
            values={"reason": reason},
        )
        return await _system_page(request, system_id, problem)
    except Conflict as exc:
        problem = Problem(status=409, lines=[(str(exc), "#reason")], values={"reason": reason})
        return await _system_page(request, system_id, problem)
    raise web.HTTPSeeOther(location=f"/systems/{system_id}#review-{review.id}")


# --- asking to use a new system ------------------------------------------------------------------

REQUEST_FIELDS = [
    ("name", "Name of the AI system", "As its vendor or your department calls it."),
    ("department", "Department that will use it", "For example Parks."),
    ("vendor", "Vendor", "Who supplies it; leave blank if the City builds it."),
    ("purpose", "What it is for", "The work it will do, and who it affects."),
]


def _request_form(
    request: web.Request, problem: Problem | None = None, chosen: list[str] | None = None
) -> web.Response:
    context = {
        "approver": "The approver your policy names",
        "text_fields": REQUEST_FIELDS,
        "categories": [(c.value, label) for c, label in CATEGORY_CHOICES.items()],
        "chosen": chosen or [],
        "fact_sheet": list(FACT_SHEET.items()),
        "problem": problem,
        "values": problem.values if problem else {},
        "errors": problem.fields if problem else {},
    }
    status = problem.status if problem else 200
    return aiohttp_jinja2.render_template("system_request.html", request, context, status=status)


@routes.get("/approval-requests/new")
@requires(Permission.READ_OWN)
async def request_form(request: web.Request) -> web.Response:
    return _request_form(request)


@routes.post("/approval-requests/new")
@requires(Permission.READ_OWN)
async def request_approval(request: web.Request) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    posted = await request.post()
    form = {k: v for k, v in posted.items() if isinstance(v, str) and k != "csrf"}
    chosen = [str(v) for v in posted.getall("data_categories", [])]
    body = {
        **{k: form.get(k, "") for k, _, _ in REQUEST_FIELDS},
        "data_categories": chosen,
        "public_facing": bool(form.get("public_facing")),
        "pilot": bool(form.get("pilot")),
        "fact_sheet": {k: form[f"fact-{k}"] for k in FACT_SHEET if form.get(f"fact-{k}")},
    }
    try:
        async with deps.uows() as uow:
            made = await systems.request_approval(
                body, me, uow=uow, policy=deps.policy, now=deps.now()
            )
            due = await systems.request_deadline(made, uow=uow)
    except InvalidInput as exc:
        problem = Problem(
            status=400,
            lines=[(m, f"#{k}") for k, m in exc.errors.items()],
            fields=dict(exc.errors),
            values=form,
        )
        return _request_form(request, problem, chosen)
    except Conflict as exc:
        problem = Problem(status=409, lines=[(str(exc), "#name")], values=form)
        return _request_form(request, problem, chosen)
    return aiohttp_jinja2.render_template(
        "system_requested.html",
        request,
        {
            "approver": _role(made.approver_role),
            "name": made.name,
            "due": local_time(due, deps.zone) if due else "the policy's deadline",
        },
        status=201,
    )


@routes.post("/approval-requests/{request_id}/decision")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def decide_request(request: web.Request) -> web.StreamResponse:
    """The approver approves or refuses; refusing needs reasons (the queue shows the error)."""
    me = signed_in(request)
    deps = request.app[DEPS]
    form = await request.post()
    body = {"decision": str(form.get("decision", "")), "reasons": str(form.get("reasons", ""))}
    request_id = request.match_info["request_id"]
    try:
        async with deps.uows() as uow:
            found = await systems.request_by_id(request_id, uow=uow)
            await systems.decide_request(
                found, me, body, uow=uow, policy=deps.policy, now=deps.now()
            )
    except (InvalidInput, Conflict) as exc:
        message = "; ".join(exc.errors.values()) if isinstance(exc, InvalidInput) else str(exc)
        problem = Problem(
            status=400 if isinstance(exc, InvalidInput) else 409,
            lines=[(message, f"#reasons-{request_id}")],
            fields={f"reasons-{request_id}": message},
        )
        return await _queue_page(request, problem)
    raise web.HTTPSeeOther(location="/reviews#requests")


# --- the decider's queue --------------------------------------------------------------------------


@routes.get("/reviews")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def queue(request: web.Request) -> web.Response:
    """Open reviews and approval requests the signed-in person decides, soonest deadline
    first."""
    return await _queue_page(request)


async def _queue_page(request: web.Request, problem: Problem | None = None) -> web.Response:
    me = signed_in(request)
    deps = request.app[DEPS]
    now = deps.now()
    async with deps.uows() as uow:
        open_reviews = [
            r
            for r in await uow.session.exec(
                select(Review).where(Review.status == ReviewStatus.OPEN)
            )
            if systems.may_decide(me, r, deps.policy)
        ]
        duties = {f"{DECISION}{r.id}": r.id for r in open_reviews}
        due: dict[str, datetime] = {}
        if duties:
            clocks = await uow.session.exec(
                select(Obligation).where(
                    col(Obligation.duty).in_(list(duties)),
                    Obligation.level == 0,
                    Obligation.status != ObligationStatus.ACKNOWLEDGED,
                )
            )
            for o in clocks:
                review_id = duties[str(o.duty)]
                if review_id not in due or o.due_at < due[review_id]:
                    due[review_id] = o.due_at
        names = {
            s.id: s
            for s in await uow.session.exec(
                select(AISystem).where(col(AISystem.id).in_([r.system_id for r in open_reviews]))
            )
        }
        asked = [r for r in await systems.pending_requests(uow=uow) if systems.may_approve(me, r)]
        asked_due = {r.id: await systems.request_deadline(r, uow=uow) for r in asked}

    def soonest(r: Review) -> tuple[datetime, datetime]:
        return (due.get(r.id, r.opened_at), r.opened_at)

    rows = []
    for r in sorted(open_reviews, key=soonest):
        system = names.get(r.system_id)
        deadline = due.get(r.id)
        rows.append(
            {
                "id": r.id,
                "system_id": r.system_id,
                "system": system.name if system else r.system_id,
                "status": STATUS_NAMES.get(system.status.value, "") if system else "",
                "reason": r.reason,
                "opened": local_time(r.opened_at, deps.zone),
                "reports": len(r.report_ids),
                "due": local_time(deadline, deps.zone) if deadline else "No deadline set",
                "overdue": deadline is not None and deadline < now,
            }
        )
    far = datetime.max.replace(tzinfo=now.tzinfo)
    requests = [
        {
            "id": r.id,
            "name": r.name,
            "department": r.department,
            "vendor": r.vendor or "Not stated",
            "purpose": r.purpose,
            "data_categories": ", ".join(c.upper() for c in r.data_categories) or "None stated",
            "public_facing": _yes_no(r.public_facing),
            "pilot": _yes_no(r.pilot),
            "requested_by": r.requested_by,
            "requested": local_time(r.requested_at, deps.zone),
            "due": local_time(asked_due[r.id], deps.zone) if asked_due[r.id] else "",
            "overdue": (asked_due[r.id] or far) < now,
        }
        for r in sorted(asked, key=lambda r: asked_due[r.id] or far)
    ]
    context = {
        "rows": rows,
        "requests": requests,
        "zone": deps.zone,
        "problem": problem,
        "errors": problem.fields if problem else {},
        "values": {},
    }
    status = problem.status if problem else 200
    return aiohttp_jinja2.render_template("reviews.html", request, context, status=status)
