"""PostgreSQL for the tests, and a fresh empty database per test.

Which server: INCIDENTS_TEST_POSTGRES_URL if set (any SQLAlchemy URL; its database is used to
connect and create the per-test databases); else one listening on 127.0.0.1:5432 as `postgres`
with database `test`; else a throwaway server from the `pgserver` package (a PostgreSQL build in a
wheel), removed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from tests.harness import run_sync

ENV = "INCIDENTS_TEST_POSTGRES_URL"
LOCAL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class PostgresUnavailable(RuntimeError):
    pass


class PostgresServer:
    def __init__(self, url: str, owned: Any = None, datadir: str | None = None) -> None:
        self.url: URL = make_url(url).set(drivername="postgresql+asyncpg")
        self._owned = owned
        self._datadir = datadir

    def dsn(self, database: str | None = None) -> str:
        """A plain libpq-style DSN (for asyncpg.connect)."""
        url = self.url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def sqlalchemy_url(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    async def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def stop(self) -> None:
        if self._owned is not None:
            self._owned.cleanup()
            self._owned = None
        if self._datadir:
            shutil.rmtree(self._datadir, ignore_errors=True)


async def _reachable(dsn: str) -> Exception | None:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except Exception as exc:
        return exc
    await conn.close()
    return None


def find_or_start() -> PostgresServer:
    explicit = os.environ.get(ENV)
    if explicit:
        server = PostgresServer(explicit)
        error = run_sync(lambda: _reachable(server.dsn()))
        if error is not None:
            raise PostgresUnavailable(f"{ENV}={explicit!r} is not reachable: {error}")
        return server
    server = PostgresServer(LOCAL)
    if run_sync(lambda: _reachable(server.dsn())) is None:
        return server
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError:
        raise PostgresUnavailable(
            f"no PostgreSQL for the tests: nothing at {LOCAL}, {ENV} unset, and the `pgserver` "
            "package (which would start one) is not installed"
        ) from None
    datadir = tempfile.mkdtemp(prefix="incidents-pg-")
    try:
        pg = pgserver.get_server(datadir, cleanup_mode="delete")
    except Exception as exc:
        shutil.rmtree(datadir, ignore_errors=True)
        raise PostgresUnavailable(f"pgserver could not start PostgreSQL: {exc}") from exc
    # pgserver listens on a unix socket in datadir: postgresql://postgres:@/postgres?host=...
    return PostgresServer(pg.get_uri(), owned=pg, datadir=datadir)
