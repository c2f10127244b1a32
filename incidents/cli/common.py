"""What every command shares: the settings, a plain error, logging, a runtime for one task."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
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


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
