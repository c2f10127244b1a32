"""The `incidents` command: serve, and the administrator's tools."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import typer
from aiohttp import web
from pydantic import ValidationError

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
    """Run consumers, mail delivery and clocks without the web server."""
    from infra.bootstrap import build

    settings = _settings()
    _configure_logging()

    async def main() -> None:
        try:
            runtime = await build(settings)
        except PolicyError as exc:
            _fail(str(exc))
        await runtime.start_workers(set(consumer) if consumer else None, clocks=clocks)
        try:
            await asyncio.Event().wait()
        finally:
            await runtime.close()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a worker is stopped
        asyncio.run(main())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
