"""The event log kept in the database: the embedded default, needing no broker.

The outbox table *is* the log. Each consumer keeps its position (the last `seq` it finished);
writers wake readers in this process at once, and readers poll now and then for other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlmodel import col, select

from incidents.kernel.eventlog import ConsumerPosition, DeadLetter, EventRow
from incidents.kernel.events import Envelope
from incidents.kernel.time import wait_for_wake
from incidents.kernel.unit_of_work import UnitOfWorkFactory


class EmbeddedLog:
    def __init__(self, uows: UnitOfWorkFactory, *, poll_seconds: float = 0.5) -> None:
        self.uows = uows
        self.poll_seconds = poll_seconds
        self._waiters: list[asyncio.Event] = []

    def wake(self) -> None:
        """New events were committed in this process."""
        for waiter in self._waiters:
            waiter.set()

    def source(self, consumer: str, types: frozenset[str]) -> EmbeddedSource:
        waiter = asyncio.Event()
        self._waiters.append(waiter)
        return EmbeddedSource(self, consumer, types, waiter)


class LoggedEvent(Protocol):
    """An `events` row, as an ORM object or a plain row of its columns (the outbox relay's)."""

    id: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]


def to_envelope(row: LoggedEvent) -> Envelope:
    return Envelope(id=row.id, type=row.type, subject=row.subject, time=row.time, data=row.data)


class EmbeddedSource:
    def __init__(
        self, log: EmbeddedLog, consumer: str, types: frozenset[str], waiter: asyncio.Event
    ) -> None:
        self.log = log
        self.consumer = consumer
        self.types = types
        self.waiter = waiter
        self.batch_size = 200
        self._position: int | None = None
        self._pending_position: int | None = None

    async def start(self) -> None:
        async with self.log.uows() as uow:
            row = await uow.session.get(ConsumerPosition, self.consumer)
            if row is None:
                row = ConsumerPosition(consumer=self.consumer, position=0)
                uow.session.add(row)
            self._position = row.position

    async def stop(self) -> None:
        return None

    async def next_batch(self) -> Sequence[Envelope]:
        for attempt in range(2):
            self.waiter.clear()
            async with self.log.uows() as uow:
                rows = list(
                    await uow.session.exec(
                        select(EventRow)
                        .where(
                            col(EventRow.seq) > (self._position or 0),
                            col(EventRow.type).in_(self.types),
                        )
                        .order_by(col(EventRow.seq))
                        .limit(self.batch_size)
                    )
                )
            if rows:
                self._pending_position = rows[-1].seq
                return [to_envelope(r) for r in rows]
            if attempt == 0:
                await wait_for_wake(self.waiter, self.log.poll_seconds)
        return []

    async def commit(self) -> None:
        if self._pending_position is None:
            return
        async with self.log.uows() as uow:
            row = await uow.session.get(ConsumerPosition, self.consumer)
            assert row is not None
            row.position = self._pending_position
            uow.session.add(row)
        self._position, self._pending_position = self._pending_position, None

    async def park(self, envelope: Envelope, error: str, attempts: int) -> None:
        async with self.log.uows() as uow:
            uow.session.add(
                DeadLetter(
                    consumer=self.consumer,
                    event_id=envelope.id,
                    event=envelope.model_dump(mode="json"),
                    error=error,
                    attempts=attempts,
                    parked_at=datetime.now(UTC),
                )
            )
