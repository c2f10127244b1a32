"""The quarantine of mail that came in, for administrators: what was kept but not filed (an
unreadable message, a sender over the limit or outside the allowed domains), why, and a button
that files it anyway. The same as `incidents mail quarantine list|show|release`."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from incidents.intake import service as mail
from incidents.kernel.wording import local_time
from incidents.people.permissions import Permission
from incidents.web.access import requires, signed_in
from incidents.web.deps import DEPS

routes = web.RouteTableDef()

SHOWN_BYTES = 50_000  # of a message's raw text on its page; the rest is in `mail quarantine show`


@routes.get("/admin/mail")
@requires(Permission.MANAGE_MAIL)
@aiohttp_jinja2.template("mail_quarantine.html")
async def quarantine(request: web.Request) -> dict[str, Any]:
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        kept = await mail.quarantined(uow=uow)
    return {
        "released": request.query.get("released", ""),
        "messages": [
            {
                "id": m.id,
                "received": local_time(m.received_at, deps.zone),
                "sender": m.sender or "(no sender)",
                "subject": m.subject or "(no subject)",
                "reason": m.reason,
            }
            for m in kept
        ],
    }


@routes.get("/admin/mail/{mail_id}")
@requires(Permission.MANAGE_MAIL)
@aiohttp_jinja2.template("mail_kept.html")
async def kept_message(request: web.Request) -> dict[str, Any]:
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        found = await mail.by_id(request.match_info["mail_id"], uow=uow)
    text = found.raw[:SHOWN_BYTES].decode("utf-8", errors="replace")
    return {
        "m": found,
        "received": local_time(found.received_at, deps.zone),
        "text": text,
        "cut": len(found.raw) > SHOWN_BYTES,
        "quarantined": found.outcome.value == "quarantined",
    }


@routes.post("/admin/mail/{mail_id}/release")
@requires(Permission.MANAGE_MAIL)
async def release(request: web.Request) -> web.StreamResponse:
    """File a quarantined message as a report, whatever refused it."""
    me = signed_in(request)
    deps = request.app[DEPS]
    rules = await deps.mail_rules()
    async with deps.uows() as uow:
        done = await mail.release(
            request.match_info["mail_id"],
            me.email,
            uow=uow,
            policy=deps.policy,
            rules=rules,
            now=deps.now(),
        )
    raise web.HTTPSeeOther(location=f"/admin/mail?released={done.id[:12]}")
