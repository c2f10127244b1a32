"""The JSON API of AI systems, their sunset reviews and requests to approve new ones:
/api/v1/systems, /api/v1/reviews, /api/v1/approval-requests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from incidents.people.permissions import Permission
from incidents.systems import service as systems
from incidents.systems.model import AISystem, ApprovalRequest, Review
from incidents.web.access import requires, signed_in
from incidents.web.api import json_body
from incidents.web.deps import DEPS

routes = web.RouteTableDef()


def review_json(r: Review) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": r.status.value,
        "opened_by": r.opened_by,
        "opened_at": r.opened_at.isoformat(),
        "reason": r.reason,
        "decider_role": r.decider_role,
        "reports": len(r.report_ids),
        "decision": r.decision.value if r.decision else None,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "conditions": r.conditions,
        "expires_at": r.expires_at.isoformat() if r.expires_at else None,
    }


def system_json(s: AISystem, reviews: list[Review]) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "status": s.status.value,
        "department": s.department,
        "vendor": s.vendor,
        "purpose": s.purpose,
        "public_facing": s.public_facing,
        "pilot": s.pilot,
        "data_categories": s.data_categories,
        "fact_sheet": s.fact_sheet,
        "approved_by": s.approved_by,
        "approved_at": s.approved_at.isoformat() if s.approved_at else None,
        "approval_rule": s.approval_rule,
        "next_review_at": s.next_review_at.isoformat() if s.next_review_at else None,
        "reviews": [review_json(r) for r in reviews],
    }


def request_json(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "department": r.department,
        "vendor": r.vendor,
        "purpose": r.purpose,
        "data_categories": r.data_categories,
        "public_facing": r.public_facing,
        "pilot": r.pilot,
        "fact_sheet": r.fact_sheet,
        "requested_by": r.requested_by,
        "requested_at": r.requested_at.isoformat(),
        "approver_role": r.approver_role,
        "status": r.status.value,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "reasons": r.reasons,
        "system_id": r.system_id,
    }


@routes.get("/api/v1/systems")
@requires(Permission.READ_OWN)
async def list_systems(request: web.Request) -> web.Response:
    """Every AI system the service knows, with its reviews (a token is needed)."""
    async with request.app[DEPS].uows() as uow:
        found = [
            system_json(s, await systems.reviews_of(s.id, uow=uow))
            for s in await systems.inventory(uow=uow)
        ]
    return web.json_response({"systems": found})


@routes.get("/api/v1/systems/{system_id}")
@requires(Permission.READ_OWN)
async def get_system(request: web.Request) -> web.Response:
    async with request.app[DEPS].uows() as uow:
        found = await systems.by_id(request.match_info["system_id"], uow=uow)
        reviews = await systems.reviews_of(found.id, uow=uow)
    return web.json_response(system_json(found, reviews))


@routes.post("/api/v1/reviews/{review_id}/decision")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def decide(request: web.Request) -> web.Response:
    """The decider's decision: {"decision": "halt"}, {"decision": "exception", "conditions":
    ..., "expires_on": DATE}, {"decision": "phase_out", "plan": {...}}, or {"decision":
    "continue", "reasons": ...}; 422 naming each section a phase-out plan misses; 404 for
    anyone but the review's decider, 403 for an exception only someone else may grant."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    if not isinstance(body, dict):
        body = {}
    try:
        async with deps.uows() as uow:
            review = await systems.review_by_id(request.match_info["review_id"], uow=uow)
            await systems.decide(review, me, body, uow=uow, policy=deps.policy, now=deps.now())
            found = await systems.by_id(review.system_id, uow=uow)
            reviews = await systems.reviews_of(found.id, uow=uow)
    except systems.IncompletePlan as exc:
        return web.json_response(
            {
                "error": "The phase-out plan is not complete. Add what is listed.",
                "fields": exc.errors,
            },
            status=422,
        )
    return web.json_response(system_json(found, reviews))


@routes.post("/api/v1/systems/{system_id}/reviews")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def open_review(request: web.Request) -> web.Response:
    """Open a review of a system by hand: {"reason": "..."}; its decider is told, on a clock."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
    async with deps.uows() as uow:
        found = await systems.by_id(request.match_info["system_id"], uow=uow)
        await systems.open_by_hand(found, me, reason, uow=uow, policy=deps.policy, now=deps.now())
        reviews = await systems.reviews_of(found.id, uow=uow)
    return web.json_response(system_json(found, reviews), status=201)


@routes.post("/api/v1/approval-requests")
@requires(Permission.READ_OWN)
async def request_approval(request: web.Request) -> web.Response:
    """A department asks to use a new AI system; the approver the policy names decides."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    if not isinstance(body, dict):
        body = {}
    async with deps.uows() as uow:
        made = await systems.request_approval(body, me, uow=uow, policy=deps.policy, now=deps.now())
    return web.json_response(request_json(made), status=201)


@routes.get("/api/v1/approval-requests")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def list_requests(request: web.Request) -> web.Response:
    """The pending requests the caller approves, oldest first."""
    me = signed_in(request)
    async with request.app[DEPS].uows() as uow:
        pending = [
            request_json(r)
            for r in await systems.pending_requests(uow=uow)
            if systems.may_approve(me, r)
        ]
    return web.json_response({"requests": pending})


@routes.post("/api/v1/approval-requests/{request_id}/decision")
@requires(Permission.DECIDE_AI_SYSTEMS)
async def decide_request(request: web.Request) -> web.Response:
    """{"decision": "approve"} or {"decision": "refuse", "reasons": "..."}; 404 for anyone
    but the approver the policy names."""
    me = signed_in(request)
    deps = request.app[DEPS]
    body = await json_body(request)
    if not isinstance(body, dict):
        body = {}
    async with deps.uows() as uow:
        found = await systems.request_by_id(request.match_info["request_id"], uow=uow)
        await systems.decide_request(found, me, body, uow=uow, policy=deps.policy, now=deps.now())
    return web.json_response(request_json(found))
