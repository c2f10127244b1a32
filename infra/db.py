"""The database: engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection, awaited in turn: SQLite has one writer at a time, and writers that
        # meet a lock sleep in SQLite's busy handler (up to 100 ms a try). Queueing for the
        # connection in asyncio instead keeps latency low under concurrent reports.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=120
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs three round trips on every checkout. Connections are recycled
    # instead, and a dropped one fails its transaction, which the callers retry.
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_recycle=300)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # WAL lets readers (the web pages) go on while a writer commits; foreign keys are off by
    # default in SQLite; synchronous=NORMAL is durable across a process crash under WAL.
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_sessions(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine | Engine) -> bool:
    return engine.dialect.name == "sqlite"
