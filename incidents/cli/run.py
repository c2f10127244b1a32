"""`incidents serve`, `web` and `worker`: the service's processes."""

from __future__ import annotations

import asyncio
import getpass
import signal
import socket
from typing import TYPE_CHECKING

import typer
from aiohttp import web

from incidents.cli.common import (
    configure_logging,
    data_folder_lock,
    fail,
    require_shared_secret,
    settings,
)
from incidents.policy import PolicyError

if TYPE_CHECKING:
    from infra.settings import Settings

# Who changed a setting, on the record: whoever started the process with it (the environment
# it reads is theirs), on this machine.
STARTED_BY = f"started by {getpass.getuser()} on {socket.gethostname()}"


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
) -> None:
    """Run everything in one process: the web pages and API, the consumers and the clocks.

    One per data folder: a second `serve` on the same INCIDENTS_HOME stops at once."""
    _run_web(host, port, workers=True)


def web_only(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
) -> None:
    """Run only the web pages and API (run workers with `incidents worker`)."""
    _run_web(host, port, workers=False)


def _run_web(host: str, port: int, *, workers: bool) -> None:
    command = "serve" if workers else "web"
    config = settings()
    if not workers:
        require_shared_secret(config, command)
    with data_folder_lock(config, command):
        _start_web(config, host, port, workers=workers)


def _start_web(config: Settings, host: str, port: int, *, workers: bool) -> None:
    from incidents.web.app import create_app
    from infra.bootstrap import build, load_policy

    try:
        load_policy(config)  # fail fast, before binding a port, with the file and the problem
    except PolicyError as exc:
        fail(str(exc))
    configure_logging()
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host

    async def make_app() -> web.Application:
        runtime = await build(config, base_url=f"http://{shown_host}:{port}")
        await runtime.record_settings(by=STARTED_BY)
        return create_app(runtime, workers=workers)

    mail = config.safe_url("smtp") or f"files in {config.outbox_mail_dir.resolve()} (see /mail)"
    typer.echo(
        f"AI incident service on http://{shown_host}:{port}  "
        f"(data: {config.home.resolve()}; policy: {', '.join(config.policy)}; mail: {mail})"
    )
    web.run_app(make_app(), host=host, port=port, print=None)


def worker(
    consumer: list[str] = typer.Option(
        None, "--consumer", help="run only these consumers (repeatable); default: all"
    ),
    clocks: bool = typer.Option(True, help="also keep the clocks (reminders and deadlines)"),
) -> None:
    """Run the outbox relay, consumers, mail delivery and clocks, without the web server."""
    config = settings()
    require_shared_secret(config, "worker")
    with data_folder_lock(config, "worker"):
        _run_worker(config, consumer, clocks=clocks)


def _run_worker(config: Settings, consumer: list[str] | None, *, clocks: bool) -> None:
    from infra.bootstrap import build

    configure_logging()

    async def main() -> None:
        try:
            runtime = await build(config)
            await runtime.record_settings(by=STARTED_BY)
        except PolicyError as exc:
            fail(str(exc))
        try:
            await runtime.start_workers(set(consumer) if consumer else None, clocks=clocks)
        except ValueError as exc:  # an unknown --consumer
            await runtime.close()
            fail(str(exc))
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
