"""The application factory. `cleanup_ctx` owns the runtime, so one `run_app` owns the lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from incidents.kernel import eventlog
from incidents.kernel.errors import InvalidInput, NotFound
from incidents.notices import service as notices
from incidents.web import api, pages
from incidents.web.deps import DEPS, WebDeps
from infra.bootstrap import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HERE = Path(__file__).parent


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become plain answers: JSON for the API, a page for people."""
    try:
        return await handler(request)
    except InvalidInput as exc:
        if _is_api(request):
            return web.json_response(
                {
                    "error": "The report was not accepted. Fix the fields listed.",
                    "fields": exc.errors,
                },
                status=400,
            )
        return _page(request, "Something in the request is not right.", str(exc), 400)
    except NotFound as exc:
        if _is_api(request):
            return web.json_response({"error": str(exc)}, status=404)
        return _page(request, "Not found", str(exc), 404)
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[DEPS].max_body_bytes // 1024
        message = f"The request is larger than {limit} KiB. Shorten the description."
        if _is_api(request):
            return web.json_response({"error": message}, status=413)
        return _page(request, "Too large", message, exc.status)
    except web.HTTPException as exc:
        if _is_api(request) and exc.status >= 400:
            return web.json_response({"error": exc.reason}, status=exc.status)
        if exc.status in (404, 405):
            return _page(request, exc.reason, "There is no page at this address.", exc.status)
        raise


def _page(request: web.Request, title: str, message: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template(
        "error.html", request, {"title": title, "message": message}, status=status
    )


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse form posts from other sites: a browser always sends Origin on a cross-site POST."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _is_api(request):
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            return _page(request, "Refused", "This form must be sent from this site.", 403)
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Acknowledgement links carry a secret: never send it on to another site.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


async def healthz(request: web.Request) -> web.Response:
    """The process answers (for a container's health check)."""
    return web.json_response({"status": "ok"})


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
    )


def create_app(runtime: Runtime, *, workers: bool = True) -> web.Application:
    """The web application around a runtime. With `workers`, consumers and clocks run here too."""
    app = web.Application(
        middlewares=[security_headers, errors, same_origin],
        client_max_size=runtime.settings.max_body_bytes,
    )
    app[DEPS] = deps_of(runtime)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("incidents.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_routes(api.routes)
    app.router.add_routes(pages.routes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_static("/static", HERE / "static", name="static")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if workers:
            await runtime.start_workers()
        yield
        await runtime.close()

    app.cleanup_ctx.append(lifecycle)
    return app
