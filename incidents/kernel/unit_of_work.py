"""One transaction: a state change, the events announcing it (the outbox) and its entries on the
record (`incidents.record`), committed together."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Executable, Row, func, insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from incidents.kernel.eventlog import EventRow
from incidents.kernel.events import Envelope, Event
from incidents.record import service as audit
from incidents.record.model import ACTION_LENGTH, ACTOR_LENGTH, SUBJECT_LENGTH

# Who acted, for an event whose data does not say (`by`). A report is filed by its reporter,
# whose name and address stay in the report, out of the record; the rest of what happens without
# a `by` (obligations opened, reminders, breaches, refused notices) is the service's own doing.
REPORTER = "reporter"
SYSTEM = "system"
_ACTORS = {"incident.reported": REPORTER}


class UnitOfWork:
    def __init__(
        self, session: AsyncSession, *, serialize_events: bool, notify_channel: str | None = None
    ) -> None:
        self.session = session
        self._serialize = serialize_events
        self._notify_channel = notify_channel
        self._pending: list[Envelope] = []
        self._entries: list[audit.Draft] = []  # for the record, in the order of the changes
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once this unit of work has committed (e.g. wake a worker)."""
        self._after_commit.append(hook)

    def emit(
        self,
        event: Event,
        *,
        subject: str,
        time: datetime,
        id: str | None = None,
        actor: str | None = None,
    ) -> Envelope:
        """Announce `event` when this unit of work commits, and put it on the record.

        The record's entry names `actor` if given, else the event's `by`, else who acts for
        that kind of event ("reporter" for a filed report, "system" otherwise).
        """
        envelope = event.envelope(subject=subject, time=time, id=id)
        self._pending.append(envelope)
        if actor is None:
            by = envelope.data.get("by")
            actor = by if isinstance(by, str) and by else _ACTORS.get(event.name, SYSTEM)
        self._entries.append(
            audit.Draft(
                at=time,
                action=event.name,
                subject=subject,
                actor=actor[:ACTOR_LENGTH],  # all of it is in the data
                data={k: v for k, v in envelope.data.items() if k not in event.unrecorded},
                event_id=envelope.id,
            )
        )
        return envelope

    def record(
        self,
        action: str,
        *,
        subject: str,
        actor: str,
        at: datetime,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Put a change that announces no event on the record, in this transaction: account and
        grant changes, tokens made and revoked, sign-ins. (Events are put on it by `emit`.)

        `action` names what happened (`token.revoked`), `subject` what it happened to (an id),
        `actor` who did it (an email address, or "system"), `data` the details, as JSON; keep
        secrets out of it (a token's id, never the token). Entries cannot be changed once
        committed; a change of mind is a new entry.
        """
        if (
            len(actor) > ACTOR_LENGTH
            or len(subject) > SUBJECT_LENGTH
            or len(action) > ACTION_LENGTH
        ):
            raise ValueError("an entry's actor, subject or action is too long for the record")
        if at.tzinfo is None:
            raise ValueError("naive datetime refused: an entry's time must carry an offset")
        # Stored as JSON and hashed as read back: normalise now (times to ISO text), so that
        # what cannot be JSON fails here, in the use case, rather than at commit.
        normal = json.loads(json.dumps(to_jsonable_python(dict(data or {})), allow_nan=False))
        self._entries.append(
            audit.Draft(at=at, action=action, subject=subject, actor=actor, data=normal)
        )

    async def flush_events(self) -> None:
        """Write the events and the record's entries; the last thing before committing."""
        locked = await self._write_events() if self._pending else False
        if self._entries:
            # Last: the record's lock is held from here (or the events' notice) to the commit.
            await audit.append(self.session, self._entries, locked=locked)
            self._entries.clear()

    async def _write_events(self) -> bool:
        """Write the pending events; whether this transaction now keeps other writers of the
        record out (see `audit.append`)."""
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
        self._pending.clear()
        if self._notify_channel:
            # Delivered to listening processes when, and only if, this transaction commits. The
            # record's lock comes in the same round trip: its entries are written next.
            calls = [func.pg_notify(self._notify_channel, "")]
            if self._entries:
                calls.append(func.pg_advisory_xact_lock(audit.CHAIN_LOCK))
            await self.session.exec(select(*calls))
            return bool(self._entries)
        return self.session.get_bind().dialect.name == "sqlite"  # it has written: its one writer

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

        For the hottest single-statement writes that need no place on the record (claiming
        notices to send): without a session and its BEGIN and COMMIT it costs about half as
        much. A change the record must show goes through a unit of work instead.
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
