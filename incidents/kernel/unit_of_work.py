"""One transaction: a state change and the events announcing it, committed together (the outbox)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Row, func, insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from incidents.kernel.eventlog import EventRow
from incidents.kernel.events import Envelope, Event


class UnitOfWork:
    def __init__(
        self, session: AsyncSession, *, serialize_events: bool, notify_channel: str | None = None
    ) -> None:
        self.session = session
        self._serialize = serialize_events
        self._notify_channel = notify_channel
        self._pending: list[Envelope] = []
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once this unit of work has committed (e.g. wake a worker)."""
        self._after_commit.append(hook)

    def emit(
        self, event: Event, *, subject: str, time: datetime, id: str | None = None
    ) -> Envelope:
        envelope = event.envelope(subject=subject, time=time, id=id)
        self._pending.append(envelope)
        return envelope

    async def flush_events(self) -> None:
        if not self._pending:
            return
        if self._serialize:
            # Readers of the database log follow `seq`; on PostgreSQL a lower seq could commit
            # after a higher one and be skipped. Holding this lock to commit makes seq order
            # commit order. Only the embedded log on PostgreSQL needs it (Kafka mode does not).
            await self.session.exec(select(func.pg_advisory_xact_lock(7321001)))
        rows = [
            {"id": e.id, "type": e.type, "subject": e.subject, "time": e.time, "data": e.data}
            for e in self._pending
        ]
        await self.insert(EventRow, rows)
        if self._notify_channel:
            # Delivered to listening processes when, and only if, this transaction commits.
            await self.session.exec(select(func.pg_notify(self._notify_channel, "")))
        self._pending.clear()

    async def insert(
        self,
        model: type[SQLModel],
        rows: Sequence[Mapping[str, Any]],
        *,
        returning: Sequence[Any] = (),
    ) -> list[Any]:
        """Write new rows of one table with one statement, without the session tracking them;
        with `returning` (columns, e.g. the key and one the database fills in), their values.

        For rows this transaction only creates, such as a report with its obligations and
        clocks: the ORM's change tracking costs more than the writing itself. Give every column
        a value.
        """
        if not rows:
            return []
        # The table, not the mapped class: SQLAlchemy's ORM bulk path would inspect every row
        # again; a Core insert hands them to the driver as they are.
        statement = insert(model.__table__)  # type: ignore[attr-defined]
        if not returning:
            await self.session.exec(statement, params=list(rows))
            return []
        written = await self.session.exec(statement.returning(*returning), params=list(rows))
        return list(written.all())

    @property
    def emitted(self) -> bool:
        return bool(self._pending)


class UnitOfWorkFactory:
    """Opens units of work; after each commit that wrote events, tells the log readers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        serialize_events: bool = False,
        notify_channel: str | None = None,
        on_events: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_events` is called in this process after each commit that wrote events; on
        PostgreSQL, `notify_channel` tells other processes too (infra.eventlog.commit_signal)."""
        self.sessions = sessions
        self._serialize = serialize_events
        self._notify_channel = notify_channel
        self._on_events = on_events
        engine = sessions.kw["bind"]  # the engine the sessions were made for
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.dialect: str = engine.dialect.name  # "sqlite" or "postgresql"

    async def execute(self, statement: Executable) -> list[Row[Any]]:
        """Run one statement that writes no events, atomically on its own; its rows, if any.

        For the hottest single-statement writes (claiming notices to send, recording them
        sent): without a session and its BEGIN and COMMIT it costs about half as much.
        """
        async with self._autocommit.connect() as conn:
            result = await conn.execute(statement)
            return list(result.all()) if result.returns_rows else []

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[UnitOfWork]:
        async with self.sessions() as session:
            uow = UnitOfWork(
                session, serialize_events=self._serialize, notify_channel=self._notify_channel
            )
            yield uow
            wrote = uow.emitted
            await uow.flush_events()
            await session.commit()
        if wrote:
            self._on_events()
        for hook in uow._after_commit:
            hook()
