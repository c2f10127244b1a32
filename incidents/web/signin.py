"""Signing in and out: local passwords (with one-time codes for privileged roles), invitations
and password resets. Single sign-on's pages are in `incidents.web.oidc`.

Pages post back to themselves and work without JavaScript. After signing in, a person goes back
to the page that asked them to (`next`), which is always a path on this site.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from incidents.kernel.errors import InvalidInput
from incidents.people import signin
from incidents.people.model import Account, SignInSession, Stage
from incidents.people.permissions import Permission
from incidents.web.access import (
    clear_session,
    requires,
    safe_next,
    session_secret,
    set_session,
    sign_in_context,
)
from incidents.web.deps import DEPS
from incidents.web.security import throttle

routes = web.RouteTableDef()


def _see_other(target: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location=target)


@routes.get("/signin")
@requires(Permission.SIGN_IN)
async def signin_form(request: web.Request) -> web.Response:
    context = sign_in_context(request, next_page=request.query.get("next", "/me"))
    if request.query.get("signed_out"):
        context["notice"] = "You are signed out."
    return aiohttp_jinja2.render_template("signin.html", request, context)


@routes.post("/signin")
@requires(Permission.SIGN_IN)
async def signin_submit(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    await throttle(request, "signin")
    form = await request.post()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/me")))
    async with deps.uows() as uow:
        outcome = await signin.with_password(
            email, password, uow=uow, now=deps.now(), directory=deps.policy.directory
        )
    if isinstance(outcome, signin.SignInFailed):
        context = sign_in_context(request, next_page=target, error=outcome.message, email=email)
        return aiohttp_jinja2.render_template("signin.html", request, context, status=400)
    if outcome.session.stage is Stage.SIGNED_IN:
        response = _see_other(target)
    else:
        response = _see_other(f"/signin/code?next={quote(target)}")
    set_session(response, deps, outcome.secret)
    raise response


async def _waiting(request: web.Request) -> tuple[SignInSession, Account] | None:
    """The sign-in of this browser that waits for a one-time code, if there is one."""
    secret = session_secret(request)
    if secret is None:
        return None
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        live = await signin.current(secret, uow=uow, now=deps.now(), timeouts=deps.timeouts)
    if live is None or live.session.stage is Stage.SIGNED_IN:
        return None
    return live.session, live.account


def _code_context(
    session: SignInSession, found: Account, target: str, error: str = ""
) -> dict[str, Any]:
    enrolling = session.stage is Stage.ENROL
    key = session.totp_pending or ""
    return {
        "enrolling": enrolling,
        # In groups of four, as authenticator apps show keys typed in by hand.
        "key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
        "uri": signin.enrolment_uri(found, session) if enrolling else "",
        "next": target,
        "error": error,
    }


@routes.get("/signin/code")
@requires(Permission.SIGN_IN)
async def code_form(request: web.Request) -> web.Response:
    waiting = await _waiting(request)
    target = safe_next(request.query.get("next", "/me"))
    if waiting is None:
        raise _see_other(f"/signin?next={quote(target)}")
    context = _code_context(*waiting, target)
    return aiohttp_jinja2.render_template("signin_code.html", request, context)


@routes.post("/signin/code")
@requires(Permission.SIGN_IN)
async def code_submit(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    await throttle(request, "signin")
    form = await request.post()
    target = safe_next(str(form.get("next", "/me")))
    secret = session_secret(request)
    waiting = await _waiting(request)
    if secret is None or waiting is None:
        context = sign_in_context(request, next_page=target, error=signin.EXPIRED)
        return aiohttp_jinja2.render_template("signin.html", request, context, status=400)
    async with deps.uows() as uow:
        outcome = await signin.with_code(
            secret, str(form.get("code", "")), uow=uow, now=deps.now(), timeouts=deps.timeouts
        )
    if isinstance(outcome, signin.SignInFailed):
        context = _code_context(*waiting, target, error=outcome.message)
        return aiohttp_jinja2.render_template("signin_code.html", request, context, status=400)
    raise _see_other(target)


@routes.post("/signout")
@requires(Permission.SIGN_IN)
async def signout(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    secret = session_secret(request)
    if secret is not None:
        async with deps.uows() as uow:
            await signin.sign_out(secret, uow=uow, now=deps.now())
    response = _see_other("/signin?signed_out=1")
    clear_session(response)
    raise response


# --- invitations and password resets -------------------------------------------------------------


@routes.get("/account/password/{code}")
@requires(Permission.SIGN_IN)
async def password_form(request: web.Request) -> web.Response:
    """Where an invitation or a reset link leads: choose a password."""
    deps = request.app[DEPS]
    await throttle(request, "signin")
    async with deps.uows() as uow:
        link = await signin.open_link(request.match_info["code"], uow=uow, now=deps.now())
    context: dict[str, Any] = {
        "email": link.account.email,
        "purpose": link.link.purpose.value,
        "errors": {},
    }
    return aiohttp_jinja2.render_template("set_password.html", request, context)


@routes.post("/account/password/{code}")
@requires(Permission.SIGN_IN)
async def password_submit(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    await throttle(request, "signin")
    form = await request.post()
    code = request.match_info["code"]
    try:
        async with deps.uows() as uow:
            found = await signin.set_password(
                code,
                str(form.get("password", "")),
                str(form.get("confirm", "")),
                uow=uow,
                now=deps.now(),
            )
    except InvalidInput as exc:
        async with deps.uows() as uow:
            link = await signin.open_link(code, uow=uow, now=deps.now())
        context = {
            "email": link.account.email,
            "purpose": link.link.purpose.value,
            "errors": exc.errors,
        }
        return aiohttp_jinja2.render_template("set_password.html", request, context, status=400)
    context = sign_in_context(request, next_page="/me", email=found.email)
    context["notice"] = "Your password is set. Sign in with it now."
    return aiohttp_jinja2.render_template("signin.html", request, context)


@routes.get("/account/reset")
@requires(Permission.SIGN_IN)
@aiohttp_jinja2.template("reset_request.html")
async def reset_form(request: web.Request) -> dict[str, Any]:
    return {"sent": False, "error": ""}


@routes.post("/account/reset")
@requires(Permission.SIGN_IN)
async def reset_submit(request: web.Request) -> web.Response:
    """Mail a reset link to a local account's address. The page says the same whether or not
    an account uses it, so it cannot be used to find out who has one."""
    deps = request.app[DEPS]
    await throttle(request, "signin")
    form = await request.post()
    email = str(form.get("email", "")).strip()
    if "@" not in email:
        context = {"sent": False, "error": "Give the email address you sign in with."}
        return aiohttp_jinja2.render_template("reset_request.html", request, context, status=400)
    async with deps.uows() as uow:
        link = await signin.reset_link(email, uow=uow, now=deps.now())
    if link is not None:
        url = f"{deps.base_url}/account/password/{link.code}"
        hours = int(signin.RESET_LIFETIME.total_seconds() // 3600)
        text = (
            f"Someone asked to reset the password of {link.account.email} for AI incident "
            f"reporting.\n\nTo choose a new password, open this link within {hours} hour"
            f"{'s' if hours != 1 else ''}:\n{url}\n\n"
            "If it was not you, ignore this email: your password stays as it is."
        )
        try:
            await deps.send_mail(link.account.email, "Reset your password", text)
        except OSError:
            context = {
                "sent": False,
                "error": "The email could not be sent just now. Try again in a few minutes.",
            }
            return aiohttp_jinja2.render_template(
                "reset_request.html", request, context, status=503
            )
    return aiohttp_jinja2.render_template(
        "reset_request.html", request, {"sent": True, "error": ""}
    )
