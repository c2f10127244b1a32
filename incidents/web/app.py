"""The application factory. `cleanup_ctx` owns the runtime, so one `run_app` owns the lifecycle."""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from email.utils import make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from incidents.kernel import eventlog
from incidents.kernel.actor import Grant
from incidents.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from incidents.kernel.throttle import Limit
from incidents.notices import service as notices
from incidents.people.permissions import Permission
from incidents.people.signin import Timeouts
from incidents.web import (
    api,
    case_pages,
    cases_api,
    events_api,
    evidence,
    mail_pages,
    oidc,
    openapi,
    pages,
    security,
    signin,
    staff,
    systems_api,
    systems_pages,
)
from incidents.web.access import check_routes, page_context, requires, who_and_may
from incidents.web.deps import DEPS, SendMail, SingleSignOn, WebDeps
from incidents.web.security import is_api
from infra.bootstrap import Runtime
from infra.settings import Settings
from notifications.outbound.mailer import DeliveryError
from notifications.outbound.render import build_message

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HERE = Path(__file__).parent


log = logging.getLogger(__name__)

_TITLES = {403: "Refused", 421: "Wrong address", 429: "Too many tries"}
_KEPT = ("Retry-After", "WWW-Authenticate")  # headers of a refusal its answer must keep


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes a plain answer, JSON for the API and a page for people, never a
    traceback; an unexpected one is logged with the request's id, which the answer quotes."""
    request_id = uuid.uuid4().hex[:12]
    try:
        response = await handler(request)
    except InvalidInput as exc:
        if is_api(request):
            response = web.json_response(
                {
                    "error": "Not accepted: fix the fields listed.",
                    "fields": exc.errors,
                },
                status=400,
            )
        else:
            response = _page(request, "Something in the request is not right.", str(exc), 400)
    except Conflict as exc:
        if is_api(request):
            response = web.json_response({"error": str(exc)}, status=409)
        else:
            response = _page(request, "That cannot be done now", str(exc), 409)
    except Forbidden as exc:
        if is_api(request):
            response = web.json_response({"error": str(exc)}, status=403)
        else:
            response = _page(request, "Refused", str(exc), 403)
    except NotFound as exc:
        if is_api(request):
            response = web.json_response({"error": str(exc)}, status=404)
        else:
            response = _page(request, "Not found", str(exc), 404)
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[DEPS].max_body_bytes // 1024
        message = f"The request is larger than {limit} KiB. Shorten the description."
        if is_api(request):
            response = web.json_response({"error": message}, status=413)
        else:
            response = _page(request, "Too large", message, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects
        if is_api(request):
            response = web.json_response({"error": exc.reason}, status=exc.status)
            response.headers.update({k: v for k, v in exc.headers.items() if k in _KEPT})
        elif exc.status in (404, 405):
            response = _page(request, exc.reason, "There is no page at this address.", exc.status)
        else:
            title = _TITLES.get(exc.status, "Something in the request is not right.")
            response = _page(request, title, exc.reason, exc.status)
            response.headers.update({k: v for k, v in exc.headers.items() if k in _KEPT})
    except Exception:
        log.exception("request %s (%s %s) failed", request_id, request.method, request.path)
        message = (
            "Something went wrong on our side and the request was not completed. "
            f"Try again; if it keeps failing, give this reference to your IT desk: {request_id}."
        )
        if is_api(request):
            response = web.json_response({"error": message, "request_id": request_id}, status=500)
        else:
            response = _page(request, "Something went wrong", message, 500)
    response.headers["X-Request-Id"] = request_id
    return response


async def _page_context(request: web.Request) -> dict[str, Any]:
    return page_context(request)


def _page(request: web.Request, title: str, message: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html",
        request,
        {**page_context(request), "title": title, "message": message},
        status=status,
    )


@requires(Permission.SERVICE_HEALTH)
async def healthz(request: web.Request) -> web.Response:
    """The process answers (for a container's health check)."""
    return web.json_response({"status": "ok"})


@requires(Permission.SERVICE_HEALTH)
async def readyz(request: web.Request) -> web.Response:
    """Ready to take reports (the database answers), and what is still waiting to go out.

    A broker outage does not make an instance unready: intake goes on and events wait in the
    outbox, which `events` shows. For load balancers and monitoring.
    """
    deps = request.app[DEPS]
    try:
        async with deps.uows() as uow:
            mail = await notices.waiting(uow=uow)
            events = await eventlog.unpublished(uow=uow)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return web.json_response(
            {"status": "unavailable", "database": f"cannot reach the database: {exc}"},
            status=503,
        )
    now = deps.now()

    def age(since: datetime | None) -> float | None:
        return None if since is None else round((now - since).total_seconds(), 3)

    body: dict[str, Any] = {
        "status": "ready",
        "database": "ok",
        "notices": {
            "waiting": mail.count,
            "oldest_waiting_seconds": age(mail.oldest),
            "refused": mail.refused,
        },
    }
    if deps.broker_healthy is not None:  # production mode: events go on to Kafka
        body["events"] = {
            "unpublished": events.count,
            "oldest_unpublished_seconds": age(events.oldest),
        }
        healthy = deps.broker_healthy()
        if healthy is not None:  # this process publishes (not a web-only instance)
            body["events"]["broker"] = "ok" if healthy else "unreachable"
    return web.json_response(body)


def deps_of(runtime: Runtime) -> WebDeps:
    """The part of the runtime the handlers may use."""
    relay = runtime.relay
    return WebDeps(
        uows=runtime.uows,
        file_report=runtime.intake.file,
        policy=runtime.policy,
        secret=runtime.secret,
        now=runtime.now,
        max_body_bytes=runtime.settings.max_body_bytes,
        mail_folder=None if runtime.settings.smtp_url else runtime.settings.outbox_mail_dir,
        broker_healthy=None if relay is None else (lambda: relay.healthy),
        base_url=runtime.base_url,
        allowed_hosts=allowed_hosts(runtime.base_url, runtime.settings.allowed_hosts),
        secure_cookies=runtime.base_url.startswith("https://"),
        rate_limits={**DEFAULT_LIMITS, **runtime.settings.rate_limits},
        trusted_proxies=tuple(runtime.settings.trusted_proxies),
        timeouts=Timeouts(
            idle=timedelta(minutes=runtime.settings.session_idle_minutes),
            absolute=timedelta(hours=runtime.settings.session_hours),
        ),
        single_sign_on=_single_sign_on(runtime.settings),
        send_mail=_mail_sender(runtime),
        mail_rules=runtime.mail_rules,
    )


def _single_sign_on(settings: Settings) -> SingleSignOn | None:
    if not settings.oidc_issuer:
        return None
    assert settings.oidc_client_id and settings.oidc_client_secret  # the settings check it
    return SingleSignOn(
        issuer=settings.oidc_issuer.rstrip("/"),
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value(),
        roles_claim=settings.oidc_roles_claim,
        role_map={claim: Grant(role) for claim, role in settings.oidc_role_map.items()},
        label=settings.oidc_label,
    )


def _mail_sender(runtime: Runtime) -> SendMail:
    """Mail a person now, through the service's mailer (password-reset links)."""

    async def send(to: str, subject: str, text: str) -> None:
        message_id = make_msgid(domain=urlsplit(runtime.base_url).hostname or "incidents")
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
        message = build_message(
            sender=runtime.settings.mail_from,
            recipients=[to],
            subject=subject,
            text=text,
            html=f"<!doctype html><html><body>{paragraphs}</body></html>",
            message_id=message_id,
            thread_id=message_id,
        )
        try:
            await runtime.mailer.send(
                message, sender=parseaddr(runtime.settings.mail_from)[1], recipients=[to]
            )
        except DeliveryError as exc:
            raise OSError(str(exc)) from exc

    return send


# Per client. Staff file a few reports a day; a receipt code or an acknowledgement link is
# tried once or twice by its holder, and more often only by someone guessing.
DEFAULT_LIMITS = {
    "intake": Limit.parse("300/minute"),
    "lookup": Limit.parse("60/minute"),
    "ack": Limit.parse("60/minute"),
    # Passwords and one-time codes: a person mistypes a few; a guesser is slowed here and the
    # account locks after signin.MAX_FAILURES wrong passwords in a row.
    "signin": Limit.parse("20/minute"),
}


def allowed_hosts(base_url: str, extra: Iterable[str]) -> frozenset[str]:
    """The host names this service answers to: its base URL's, the loopback names (health
    checks, the machine itself), and the ones the deployment adds."""
    names = {urlsplit(base_url).hostname or "", "localhost", "127.0.0.1", "::1"}
    names.update(h.strip().lower() for h in extra if h.strip())
    return frozenset(n for n in names if n)


def create_app(runtime: Runtime, *, workers: bool = True) -> web.Application:
    """The web application around a runtime. With `workers`, consumers and clocks run here too."""
    app = web.Application(
        middlewares=[security.known_hosts, errors, security.forms_from_this_site, who_and_may],
        client_max_size=runtime.settings.max_body_bytes,
    )
    app[DEPS] = deps_of(runtime)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("incidents.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        context_processors=[_page_context],
    )
    app.on_response_prepare.append(security.on_prepare)
    app.router.add_routes(api.routes)
    app.router.add_routes(cases_api.routes)
    app.router.add_get("/api/v1/openapi.json", openapi.document)
    app.router.add_routes(pages.routes)
    app.router.add_routes(signin.routes)
    app.router.add_routes(oidc.routes)
    app.router.add_routes(staff.routes)
    app.router.add_routes(case_pages.routes)
    app.router.add_routes(evidence.routes)
    app.router.add_routes(systems_api.routes)
    app.router.add_routes(events_api.routes)
    app.router.add_routes(mail_pages.routes)
    app.router.add_routes(systems_pages.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_static("/static", HERE / "static", name="static")
    check_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if workers:
            await runtime.start_workers()
        yield
        await runtime.close()

    app.cleanup_ctx.append(lifecycle)
    return app
