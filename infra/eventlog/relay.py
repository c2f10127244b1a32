"""The outbox relay: hands committed event rows to Kafka, in `seq` order, and marks them published.

Intake only ever writes rows to the `events` table, so a broker outage never blocks it: the relay
logs, backs off (up to `max_backoff` seconds) and keeps trying, and the rows wait in the table.

Delivery is at least once: rows are marked published only after the broker acknowledged them; a
crash between the two publishes them again, and consumers drop the copies by event id.

Order. Rows go out in `seq` order, each batch acknowledged before the next is read, so a report's
events reach its partition in the order they were written. On PostgreSQL only one relay publishes
at a time (a transaction-scoped advisory lock; other instances find it taken and wait for their
next round): with `FOR UPDATE SKIP LOCKED` alone, a second relay would take the *next* rows while
the first is still publishing, and a report's later event could overtake its earlier one. The
rows are still selected `FOR UPDATE SKIP LOCKED`, which SQLAlchemy leaves out on SQLite, where
the database lock already serialises writers. The relay selects `published_at IS NULL` rather than
"after the last seq", so a row whose transaction commits late (a lower seq than rows already
published) is still published, never skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Row, Select, select, text, update

from incidents.kernel.eventlog import EventRow
from incidents.kernel.events import Envelope
from incidents.kernel.retry import retrying
from incidents.kernel.time import wait_for_wake
from incidents.kernel.unit_of_work import UnitOfWork, UnitOfWorkFactory
from infra.eventlog.embedded import to_envelope

log = logging.getLogger(__name__)

RELAY_LOCK = 7321002  # pg_advisory lock key; 7321001 is the embedded log's


class Publisher(Protocol):
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only once the log has acknowledged every envelope."""
        ...


# Plain rows, not ORM objects: the relay only reads them, and tracking costs per row.
_EVENTS = EventRow.__table__  # type: ignore[attr-defined]
_UNPUBLISHED: Select[Any] = (
    select(
        _EVENTS.c.seq,
        _EVENTS.c.id,
        _EVENTS.c.type,
        _EVENTS.c.subject,
        _EVENTS.c.time,
        _EVENTS.c.data,
    )
    .where(_EVENTS.c.published_at.is_(None))
    .order_by(_EVENTS.c.seq)
)


class OutboxRelay:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        publisher: Publisher,
        *,
        batch: int = 500,
        poll_seconds: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.uows = uows
        self.publisher = publisher
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self.published = 0  # rows published since start, for metrics
        # For /readyz: False while the broker refuses; None in a process that does not publish.
        self.healthy: bool | None = None

    def wake(self) -> None:
        """Events were committed in this process: publish them now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            n = await self._relay_until_done()
            self.healthy = True
            if n >= self.batch:
                continue  # more are waiting
            await wait_for_wake(self._wake, self.poll_seconds)

    async def _relay_until_done(self) -> int:
        """One round, tried again while the broker (or the database) refuses."""
        async for attempt in retrying(
            "outbox relay: publish",
            first=self.poll_seconds,
            most=self.max_backoff,
            failed=self._unhealthy,
        ):
            with attempt:
                return await self.relay_once()
        raise AssertionError("unreachable: retrying() tries forever")

    def _unhealthy(self, _: BaseException) -> None:
        self.healthy = False

    async def relay_once(self) -> int:
        """Publish the oldest unpublished rows (up to `batch`); returns how many."""
        async with self.uows() as uow:
            conn = await uow.session.connection()
            if conn.dialect.name == "postgresql":
                got = await conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK}
                )
                if not got.scalar():
                    return 0  # another relay is publishing
                # The lock must last until the rows are marked, so publish inside this
                # transaction; PostgreSQL has other connections for intake meanwhile.
                rows = await self._oldest(uow)
                if rows:
                    await self.publisher.publish([to_envelope(r) for r in rows])
                    await self._mark(uow, rows)
                self.published += len(rows)
                return len(rows)
        # SQLite: one process owns the database through one connection, which must not wait on
        # the network (a frozen broker would stall intake). Read, publish, then mark apart.
        async with self.uows() as uow:
            rows = await self._oldest(uow)
        if not rows:
            return 0
        await self.publisher.publish([to_envelope(r) for r in rows])
        async with self.uows() as uow:
            await self._mark(uow, rows)
        self.published += len(rows)
        return len(rows)

    async def _oldest(self, uow: UnitOfWork) -> list[Row[Any]]:
        conn = await uow.session.connection()
        rows = await conn.execute(_UNPUBLISHED.limit(self.batch).with_for_update(skip_locked=True))
        return list(rows.all())

    async def _mark(self, uow: UnitOfWork, rows: Sequence[Row[Any]]) -> None:
        await uow.session.exec(
            update(_EVENTS)
            .where(_EVENTS.c.seq.in_([r.seq for r in rows]))
            .values(published_at=datetime.now(UTC))
        )
