"""`incidents migrate`: bring a database's schema to the current version with Alembic.

Safe to run twice, and from several instances at once: Alembic records the version it reached
(`alembic_version`), and on PostgreSQL the whole upgrade runs in one transaction holding an
advisory lock, so a second instance waits and then finds nothing to do.

Safe while an older version of the service is still running (a rolling upgrade), as long as
every migration is additive: new tables, new nullable columns or columns with a server default,
new indexes. Old code ignores what it does not know. Dropping or renaming a column takes two
releases (expand, then contract once no old version runs): never in the same migration that the
new code first needs.

A database made before migrations existed (the embedded default creates its tables with
`create_all`) is adopted: if its tables match the models exactly it is stamped as current,
otherwise migrate stops and says what differs.

New revision after changing a model (incidents/tables.py lists every table), against a scratch
PostgreSQL database:
    python -m infra.migrate revision "what changed" postgresql+asyncpg://postgres@127.0.0.1/scratch
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# The schema as a whole is what migrations are about: the one place infra reads every table.
from incidents.tables import metadata
from infra.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_LOCK = 7321003  # pg advisory lock key (7321001: embedded log, 7321002: outbox relay)


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config built in code, pointing at the migrations inside this package."""
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def schema_diff(connection: Connection) -> list[Any]:
    """How the database's tables differ from the models ([] when they match)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _upgrade(connection: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "events" in tables:
        diff = schema_diff(connection)
        if diff:
            raise RuntimeError(
                "this database was made without migrations and differs from the models; "
                f"adopt it by hand (alembic stamp) after fixing: {diff}"
            )
        command.stamp(cfg, "head")
        return
    command.upgrade(cfg, "head")


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to the newest revision (`alembic upgrade head`)."""
    engine = make_engine(url)
    cfg = alembic_config(url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK}
                )
            await connection.run_sync(_upgrade, cfg)
    finally:
        await engine.dispose()


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables straight from the models, without migrations (tests' scratch
    databases); every role of the service runs `migrate` instead."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


async def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()


async def make_revision(url: str, message: str) -> None:
    """Autogenerate a revision from the models' difference to `url` (migrated to head first)."""
    await migrate(url)
    engine = make_engine(url)
    cfg = alembic_config(url)

    def run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        number = len(list((MIGRATIONS / "versions").glob("[0-9]*.py"))) + 1
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{number:04d}")

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "revision":
        asyncio.run(make_revision(sys.argv[3], sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "upgrade":
        asyncio.run(migrate(sys.argv[2]))
    else:
        sys.exit('usage: python -m infra.migrate revision "message" URL | upgrade URL')
