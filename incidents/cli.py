"""The `incidents` command: serve, and the administrator's tools."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import datetime

import typer
from aiohttp import web
from pydantic import ValidationError

from incidents.errors import DomainError
from incidents.policy import PolicyError
from incidents.policy.cli import policy_app

app = typer.Typer(
    help="Report AI incidents; notify the people a policy names, on the policy's clock.",
    no_args_is_help=True,
    add_completion=False,
)

app.add_typer(policy_app, name="policy", help="Check, list and explain policy packs.")


def _settings():  # type: ignore[no-untyped-def]
    from infra.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"INCIDENTS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        _fail(f"a setting is not right: {problems}")


def _fail(message: str) -> None:
    typer.secho(f"incidents: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
) -> None:
    """Run everything in one process: the web pages and API, the consumers and the clocks."""
    _run_web(host, port, workers=True)


@app.command("web")
def web_only(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
) -> None:
    """Run only the web pages and API (run workers with `incidents worker`)."""
    _run_web(host, port, workers=False)


def _run_web(host: str, port: int, *, workers: bool) -> None:
    from incidents.web.app import create_app
    from infra.bootstrap import build, load_policy

    settings = _settings()
    try:
        load_policy(settings)  # fail fast, before binding a port, with the file and the problem
    except PolicyError as exc:
        _fail(str(exc))
    _configure_logging()
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host

    async def make_app() -> web.Application:
        runtime = await build(settings, base_url=f"http://{shown_host}:{port}")
        return create_app(runtime, workers=workers)

    mail = settings.smtp_url or f"files in {settings.outbox_mail_dir.resolve()} (see /mail)"
    typer.echo(
        f"AI incident service on http://{shown_host}:{port}  "
        f"(data: {settings.home.resolve()}; policy: {', '.join(settings.policy)}; mail: {mail})"
    )
    web.run_app(make_app(), host=host, port=port, print=None)


@app.command()
def worker(
    consumer: list[str] = typer.Option(
        None, "--consumer", help="run only these consumers (repeatable); default: all"
    ),
    clocks: bool = typer.Option(True, help="also keep the clocks (reminders and deadlines)"),
) -> None:
    """Run the outbox relay, consumers, mail delivery and clocks, without the web server."""
    from infra.bootstrap import build

    settings = _settings()
    _configure_logging()

    async def main() -> None:
        try:
            runtime = await build(settings)
        except PolicyError as exc:
            _fail(str(exc))
        try:
            await runtime.start_workers(set(consumer) if consumer else None, clocks=clocks)
        except ValueError as exc:  # an unknown --consumer
            await runtime.close()
            _fail(str(exc))
        # SIGTERM (docker stop, systemd) and Ctrl-C stop the worker cleanly: it leaves its
        # consumer groups at once rather than after a session timeout.
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runtime.close()

    asyncio.run(main())


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run twice, or from several instances)."""
    from infra.migrate import migrate as run_migrations

    settings = _settings()
    url = settings.resolved_database_url()
    typer.echo(f"migrating {_safe_url(url)} …")
    asyncio.run(run_migrations(url))
    typer.echo("the database schema is up to date")


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("confirm-acquisition")
def confirm_acquisition(
    reference: str = typer.Argument(..., help="the report, e.g. AI-2026-000123"),
    at: datetime = typer.Option(
        ...,
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"],
        help="when acquisition was confirmed, with its offset, e.g. 2026-11-24T10:00:00-08:00",
    ),
    by: str = typer.Option(..., help="who confirmed it (name or email), for the record"),
    affected: int = typer.Option(None, help="how many people's information was acquired"),
) -> None:
    """Record that personal information was acquired: opens the statutory breach-notice clocks
    (e.g. Wis. Stat. § 134.98, Cal. Civ. Code § 1798.82) of the active packs."""
    from incidents import services

    async def work(rt):  # type: ignore[no-untyped-def]
        async with rt.uows() as uow:
            return await services.confirm_acquisition(
                reference, confirmed_at=at, affected_count=affected, by=by, uow=uow, now=rt.now()
            )

    try:
        report = asyncio.run(_with_runtime(work))
    except DomainError as exc:
        _fail(str(exc))
    typer.echo(
        f"recorded for {report.reference}; the statutory clocks open as the router handles it"
    )


kafka_app = typer.Typer(help="Kafka topics, in production mode.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")


@kafka_app.command("init")
def kafka_init(
    partitions: int = typer.Option(6, min=1, help="partitions of the events topic"),
    replication_factor: int = typer.Option(
        1, min=1, help="copies of every event; 3 on a cluster of three or more brokers"
    ),
) -> None:
    """Create the events topic and each consumer's dead-letter topic (safe to run twice)."""
    from infra.kafka import TopicSetupError, init_topics

    settings = _settings()
    if not settings.kafka_bootstrap:
        _fail("set INCIDENTS_KAFKA_BOOTSTRAP=host:port first")
    consumers = ["notifier", "router"]
    try:
        asyncio.run(
            init_topics(
                settings.kafka_bootstrap,  # type: ignore[arg-type]
                partitions=partitions,
                consumers=consumers,
                topic=settings.kafka_topic,
                replication_factor=replication_factor,
            )
        )
    except TopicSetupError as exc:
        _fail(str(exc))
    typer.echo(f"topics ready: {settings.kafka_topic} and its dead-letter topics for {consumers}")


dlq_app = typer.Typer(help="Events a consumer could not handle, parked with the reason.")
app.add_typer(dlq_app, name="dlq", no_args_is_help=True)


async def _with_runtime(work):  # type: ignore[no-untyped-def]
    from infra.bootstrap import build

    try:
        runtime = await build(_settings())
    except PolicyError as exc:
        _fail(str(exc))
    try:
        return await work(runtime)
    finally:
        await runtime.close()


@dlq_app.command("list")
def dlq_list(consumer: str = typer.Option(None, help="only this consumer's")) -> None:
    """Show parked events: which consumer, which event, why, and whether already replayed."""
    from infra.dead_letters import list_parked

    parked = asyncio.run(_with_runtime(lambda rt: list_parked(rt, consumer)))
    if not parked:
        typer.echo("nothing is parked")
        return
    for p in parked:
        state = "replayed" if p["replayed"] else "parked"
        typer.echo(
            f"{p['parked_at']:%Y-%m-%d %H:%M:%S}  {p['consumer']}  {state}  {p['type']}  "
            f"event {p['event_id']}  report {p['subject']}\n    after {p['attempts']} "
            f"attempt(s): {p['error']}"
        )


@dlq_app.command("replay")
def dlq_replay(consumer: str = typer.Argument(..., help="the consumer, e.g. notifier")) -> None:
    """Send a consumer's parked events back to it; one that fails again is parked again."""
    from infra.dead_letters import replay

    try:
        n = asyncio.run(_with_runtime(lambda rt: replay(rt, consumer)))
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"replayed {n} event(s) to {consumer}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
