"""Who is asking, and whether they may: every route declares the permission it needs.

A handler is marked with `@requires(Permission.X)` (directly under its route decorator). The
`who_and_may` middleware finds the person (an API token on `/api/`, the session cookie on pages)
and checks the route's permission against `incidents.people.permissions.MATRIX`:

- nobody signed in where someone must be: 401 (the API says how to send a token; a page shows
  the sign-in form, which comes back to the page after);
- signed in, without the permission: 403;
- allowed: the handler runs, with `request[PRINCIPAL]` set (None for someone not signed in).
  Which report a person may see is checked again per report (404 for one they may not).

`check_routes` refuses to start an application with a route that declares nothing, so a new
page cannot be added open by mistake.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp_jinja2
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from incidents.kernel.actor import Grant, Principal
from incidents.kernel.errors import NotFound
from incidents.people import permissions, signin
from incidents.people import service as people
from incidents.people.model import Stage
from incidents.people.permissions import Permission
from incidents.web.deps import DEPS, WebDeps
from incidents.web.security import TOKEN_KEY, is_api

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H")


@dataclass(frozen=True)
class Caller:
    principal: Principal | None  # None: not signed in


CALLER = web.RequestKey("caller", Caller)
SESSION_COOKIE = "incidents_session"
_ATTRIBUTE = "__permission__"


def requires(permission: Permission) -> Callable[[H], H]:
    """Declare the permission a handler needs."""

    def mark(handler: H) -> H:
        setattr(handler, _ATTRIBUTE, permission)
        return handler

    return mark


def permission_of(route: web.AbstractRoute) -> Permission | None:
    if isinstance(route.resource, web.StaticResource):
        return Permission.READ_POLICIES  # style sheets: public like every public page
    return getattr(route.handler, _ATTRIBUTE, None)


def check_routes(app: web.Application) -> None:
    """Every route declares its permission; an undeclared one stops the service starting."""
    bare = [
        f"{r.method} {r.resource.canonical if r.resource else '?'}"
        for r in app.router.routes()
        if r.method != "HEAD" and permission_of(r) is None
    ]
    if bare:
        raise RuntimeError(
            "these routes declare no permission (add @requires(...)): " + ", ".join(bare)
        )


# --- the session cookie ---------------------------------------------------------------------------


def _fernet(deps: WebDeps) -> Fernet:
    key = hmac.new(deps.secret, b"session cookie", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(deps: WebDeps, session_secret: str) -> str:
    """The cookie's value: the session's secret, encrypted and signed (Fernet)."""
    return _fernet(deps).encrypt(session_secret.encode()).decode()


def unseal(deps: WebDeps, cookie: str) -> str | None:
    ttl = int(deps.timeouts.absolute.total_seconds())
    try:
        return _fernet(deps).decrypt(cookie.encode(), ttl=ttl).decode()
    except (InvalidToken, ValueError):
        return None


def set_session(response: web.StreamResponse, deps: WebDeps, session_secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        seal(deps, session_secret),
        httponly=True,
        samesite="Lax",  # sent on a top-level arrival from the identity provider, not on a post
        secure=deps.secure_cookies,
        path="/",
    )


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


def session_secret(request: web.Request) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return None if not cookie else unseal(request.app[DEPS], cookie)


async def _from_session(request: web.Request) -> Principal | None:
    secret = session_secret(request)
    if secret is None:
        return None
    deps = request.app[DEPS]
    async with deps.uows() as uow:
        live = await signin.current(secret, uow=uow, now=deps.now(), timeouts=deps.timeouts)
    if live is None or live.session.stage is not Stage.SIGNED_IN:
        return None
    extra = frozenset(Grant(g) for g in live.session.grants)
    return people.principal_of(live.account, deps.policy.directory, extra)


async def _from_token(request: web.Request) -> Principal | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    principal = None
    if scheme.lower() == "bearer" and secret.strip():
        deps = request.app[DEPS]
        async with deps.uows() as uow:
            principal = await people.principal_for(
                secret, uow=uow, now=deps.now(), directory=deps.policy.directory
            )
    if principal is None:
        raise unauthorized("This token is not valid: it was revoked, or it is mistyped.")
    return principal


def unauthorized(reason: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(reason=reason, headers={"WWW-Authenticate": "Bearer"})


@web.middleware
async def who_and_may(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route
    needed = permission_of(route) if route.resource is not None else Permission.READ_POLICIES
    if needed is None:  # check_routes makes this unreachable; refuse rather than serve
        raise web.HTTPForbidden(reason="This page declares no permission.")
    principal = await (_from_token(request) if is_api(request) else _from_session(request))
    request[CALLER] = Caller(principal)
    if not permissions.allows(principal, needed):
        if principal is not None:
            if needed in permissions.HIDDEN:
                raise NotFound("There is nothing at this address that you may see.")
            raise web.HTTPForbidden(reason=f"Your roles do not let you {needed.value}.")
        if is_api(request):
            raise unauthorized(
                "Sign in: send Authorization: Bearer <token> (incidents tokens create)."
            )
        context = {**page_context(request), **sign_in_context(request, next_page=request.path_qs)}
        return aiohttp_jinja2.render_template("signin.html", request, context, status=401)
    return await handler(request)


def page_context(request: web.Request) -> dict[str, Any]:
    """What every page's frame needs: the form token `security.forms_from_this_site` checks,
    and who is signed in. Pages get it from the template context processor; a page rendered
    before that runs (a refusal, an error) is given it directly."""
    me = caller(request)
    return {
        "csrf_token": request.get(TOKEN_KEY, ""),
        "me": me,
        "may_read_cases": permissions.allows(me, Permission.READ_SECURITY_CASES),
        "may_decide": permissions.allows(me, Permission.DECIDE_AI_SYSTEMS),
        "may_manage_mail": permissions.allows(me, Permission.MANAGE_MAIL),
    }


def caller(request: web.Request) -> Principal | None:
    """The person behind a request, or None when nobody is signed in."""
    found = request.get(CALLER)
    return None if found is None else found.principal


def signed_in(request: web.Request) -> Principal:
    """The person behind a request whose route needs someone signed in."""
    principal = caller(request)
    if principal is None:
        raise unauthorized("Sign in first.")
    return principal


def sign_in_context(
    request: web.Request, *, next_page: str = "", error: str = "", email: str = ""
) -> dict[str, Any]:
    deps = request.app[DEPS]
    return {
        "next": safe_next(next_page),
        "error": error,
        "email": email,
        "single_sign_on": deps.single_sign_on,
    }


def safe_next(target: str) -> str:
    """Only a path on this site: a sign-in must not send anyone elsewhere."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/me"
    return target
