"""What every command shares: the settings, a plain error, logging, a runtime for one task,
and the guards a long-running process passes before it starts."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from incidents.policy import PolicyError

if TYPE_CHECKING:  # imported when a command runs: `incidents policy` starts without them
    from infra.bootstrap import Runtime
    from infra.settings import Settings

T = TypeVar("T")


def settings() -> Settings:
    """The settings from the environment, or a plain message naming the variable at fault."""
    from infra.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"INCIDENTS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        fail(f"a setting is not right: {problems}")


def fail(message: str) -> NoReturn:
    typer.secho(f"incidents: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


async def with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Build the service's parts, do one piece of work with them, and close them."""
    from infra.bootstrap import build

    try:
        runtime = await build(settings())
    except PolicyError as exc:
        fail(str(exc))
    try:
        return await work(runtime)
    finally:
        await runtime.close()


def require_shared_secret(config: Settings, command: str) -> None:
    """`incidents web` and `worker` on a shared database stop unless INCIDENTS_SECRET_KEY is set.

    Without it each instance would sign acknowledgement links with a key generated in its own
    data folder, and a link sent by one instance would be refused by another. Checked before
    anything connects to the database.
    """
    if config.shared_database and config.secret_key is None:
        fail(
            f"INCIDENTS_SECRET_KEY is not set; `incidents {command}` on a shared database "
            f"({config.safe_url('database')}) needs it. It signs the acknowledgement links in "
            "emails: without it each instance would sign them with a key of its own, generated "
            "in its data folder, and a link sent by one instance would be refused by another. "
            "Set INCIDENTS_SECRET_KEY to the same value on every web and worker instance, e.g. "
            "one made with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


LOCK_FILE = "incidents.lock"  # in INCIDENTS_HOME: "<pid> <command>" of the process holding it


@contextlib.contextmanager
def data_folder_lock(config: Settings, command: str) -> Iterator[None]:
    """Hold the data folder for as long as this process runs `incidents <command>`, or stop
    with a message naming the process that holds it. `serve` always holds it; `web` and
    `worker` only on the embedded SQLite database (two processes on one SQLite file, each with
    its embedded event log, are unsafe).

    An exclusive, non-blocking `flock` on INCIDENTS_HOME/incidents.lock, with this process's
    PID written in the file. The kernel drops the lock when the process ends, however it ends
    (the file stays: deleting it would race with a process that has just opened it). One-off
    commands (`migrate`, `policy`, `dlq`, ...) take no lock and run beside a holder.
    """
    if command != "serve" and config.shared_database:
        yield  # web and worker instances on PostgreSQL are many by design
        return
    home = config.home.resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        fail(f"cannot use the data folder {home}: {exc.strerror}")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fail(_held_message(fd, home, command, config))
        except OSError as exc:
            fail(f"cannot lock the data folder {home}: {exc.strerror}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # still held: no stale PID is left behind a clean stop
    finally:
        os.close(fd)  # releases the lock


def _held_message(fd: int, home: Path, command: str, config: Settings) -> str:
    holder = ""
    for _ in range(20):  # the holder writes its PID just after it takes the lock
        holder = os.pread(fd, 256, 0).decode(errors="replace").strip()
        if holder:
            break
        time.sleep(0.05)
    pid, _, running = holder.partition(" ")
    who = f"`incidents {running or 'serve'}` (pid {pid or 'unknown'})"
    message = (
        f"another {who} is already running on the data folder {home}; stop it first, "
        "or set INCIDENTS_HOME to another folder"
    )
    if command != "serve" and not config.shared_database:
        message += (
            ". The embedded SQLite database is for one process: run `incidents serve`, or set "
            "INCIDENTS_DATABASE_URL to PostgreSQL to run web and worker processes apart"
        )
    return message
