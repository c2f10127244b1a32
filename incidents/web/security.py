"""What keeps the web surface safe to put on a city's network: only the hosts it serves, forms
only from its own pages, and headers that keep its pages out of frames and caches.

- **Hosts.** A request whose Host is not this service's (INCIDENTS_BASE_URL's host, the loopback
  names, INCIDENTS_ALLOWED_HOSTS) is answered 421 on every route: a DNS-rebinding page cannot
  talk to it through a name of its own.
- **Forms.** Every page a person can post from carries a form token: the HMAC of a random value
  kept in an HttpOnly, SameSite=Lax cookie (signed double submit). A form post must bring both,
  and its Origin (or, when a browser sends none, its Referer) must be this site: a cross-site or
  `Origin: null` post, or one with no token, is refused with 403 and changes nothing.
- **Headers.** A content security policy without inline script, no framing, no sniffing, no
  referrer, `Cache-Control: no-store` (pages carry receipt codes and acknowledgement links), and a
  `Server` header that names no versions.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from aiohttp import web

from incidents.kernel.throttle import hit
from incidents.web.deps import DEPS, IPNetwork

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE = "incidents_form"
FIELD = "csrf"
TOKEN_KEY = web.RequestKey("form_token", str)
NEW_COOKIE_KEY = web.RequestKey("new_form_cookie", str)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Form posts whose handler streams the body (files past the app's body limit) and calls
# `check_form_origin` and `check_form_token` itself, once it has read the form's fields.
STREAMED_FORMS = re.compile(r"/cases/[^/]+/evidence")


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _hostname(host: str) -> str:
    """'Example.org:8080' -> 'example.org'; '[::1]:80' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed(request: web.Request, host: str | None) -> bool:
    return host is not None and _hostname(host) in request.app[DEPS].allowed_hosts


@web.middleware
async def known_hosts(request: web.Request, handler: Handler) -> web.StreamResponse:
    """421 for a Host this service does not answer to."""
    if not allowed(request, request.headers.get("Host")):
        message = (
            "This service does not answer to that host name. Use its address "
            f"({request.app[DEPS].base_url}); administrators: see INCIDENTS_ALLOWED_HOSTS."
        )
        if is_api(request):
            return web.json_response({"error": message}, status=421)
        return web.Response(text=message, status=421)
    return await handler(request)


def form_token(secret: bytes, cookie: str) -> str:
    return hmac.new(secret, f"form:{cookie}".encode(), hashlib.sha256).hexdigest()[:40]


def _same_site(request: web.Request, url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and allowed(request, parts.netloc)


@web.middleware
async def forms_from_this_site(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every page a form token; refuse a form post without a valid one, or from elsewhere."""
    if is_api(request) or request.path.startswith("/static/"):
        return await handler(request)
    deps = request.app[DEPS]
    cookie = request.cookies.get(COOKIE, "")
    if len(cookie) != 43:  # token_urlsafe(32); anything else was not set by us
        cookie = secrets.token_urlsafe(32)
        request[NEW_COOKIE_KEY] = cookie
    request[TOKEN_KEY] = form_token(deps.secret, cookie)
    if request.method not in SAFE_METHODS and not STREAMED_FORMS.fullmatch(request.path):
        check_form_origin(request)
        try:
            form = await request.post()
        except web.HTTPException:
            raise  # too large: 413
        except Exception:  # not UTF-8, a broken multipart body, a malformed part header
            raise web.HTTPBadRequest(
                reason="The form could not be read. Send it from the page, as UTF-8 text."
            ) from None
        sent = form.get(FIELD)
        check_form_token(request, sent if isinstance(sent, str) else None)
    response = await handler(request)
    fresh = request.get(NEW_COOKIE_KEY)
    if fresh is not None:
        response.set_cookie(
            COOKIE, fresh, httponly=True, samesite="Lax", secure=deps.secure_cookies, path="/"
        )
    return response


def check_form_origin(request: web.Request) -> None:
    """The post comes from a page of this site: its Origin (or, when a browser sends none, its
    Referer) is this site's; `Origin: null` (a sandboxed or privacy-stripped page) is not."""
    origin = request.headers.get("Origin")
    referer = request.headers.get("Referer")
    if origin is not None:
        ok = _same_site(request, origin)
    else:
        ok = referer is None or _same_site(request, referer)
    if not ok:
        raise Refused()


def check_form_token(request: web.Request, sent: str | None) -> None:
    """`sent` (the form's `csrf` field) is the token of this browser's form cookie, and the
    cookie is one this site set (not one made up for this request)."""
    if not (
        NEW_COOKIE_KEY not in request
        and sent is not None
        # As bytes: compare_digest refuses non-ASCII str, which a forged form may send.
        and hmac.compare_digest(sent.encode(), request[TOKEN_KEY].encode())
    ):
        raise Refused()


async def throttle(request: web.Request, purpose: str) -> None:
    """Count this request against its client's limit for `purpose` (intake, lookup, ack);
    429 with Retry-After once it is over. The counters are shared by every instance."""
    deps = request.app[DEPS]
    limit = deps.rate_limits.get(purpose)
    if limit is None:
        return
    client = client_address(request, deps.trusted_proxies)
    wait = await hit(deps.uows, f"{purpose}:{client}", limit, deps.now())
    if wait is not None:
        raise web.HTTPTooManyRequests(
            reason="Too many requests from your address. Wait a little, then try again.",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def client_address(request: web.Request, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the last address
    in X-Forwarded-For that is not one (earlier entries are the client's to forge)."""
    chain = [request.remote or ""]
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        chain = [a.strip() for a in forwarded.split(",")] + chain
    for address in reversed(chain):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address or "unknown"
        if not any(ip in network for network in trusted):
            return str(ip)
    return chain[0] or "unknown"


class Refused(web.HTTPForbidden):
    """A form post that did not come from this site's own page."""

    def __init__(self) -> None:
        super().__init__(
            reason="This form was not sent from this site's page, or the page has expired. "
            "Go back, reload the page and send the form again."
        )


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers for every response, errors and static files included."""
    headers = response.headers
    headers["Server"] = "ai-incidents"
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Acknowledgement links carry a secret: never send it on to another site. Not
    # "no-referrer": with it, browsers send `Origin: null` on this site's own form posts.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
