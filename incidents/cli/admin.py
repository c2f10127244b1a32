"""`incidents migrate` and `incidents confirm-acquisition`: an administrator's one-off tasks."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from incidents.cli.common import fail, settings, with_runtime
from incidents.kernel.errors import DomainError
from incidents.reports import service as reports
from incidents.reports.model import Report

if TYPE_CHECKING:
    from infra.bootstrap import Runtime


def migrate() -> None:
    """Bring the database schema up to date (safe to run twice, or from several instances)."""
    from infra.migrate import migrate as run_migrations

    config = settings()
    typer.echo(f"migrating {config.safe_url('database')} …")
    asyncio.run(run_migrations(config.resolved_database_url()))
    typer.echo("the database schema is up to date")


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

    async def work(rt: Runtime) -> Report:
        async with rt.uows() as uow:
            return await reports.confirm_acquisition(
                reference, confirmed_at=at, affected_count=affected, by=by, uow=uow, now=rt.now()
            )

    try:
        report = asyncio.run(with_runtime(work))
    except DomainError as exc:
        fail(str(exc))
    typer.echo(
        f"recorded for {report.reference}; the statutory clocks open as the router handles it"
    )
