"""The one consumer loop, for every log (the database log or Kafka).

Each event is handled in one transaction together with a `HandledEvent` row, so an event seen
twice (a replay, a redelivery after a crash) changes nothing the second time. A handler that
fails is retried with backoff; after `max_attempts` the event is parked with its error in the
dead-letter place and the consumer moves on. An event that does not fit its schema is parked at
once: retrying cannot fix it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from incidents.events import Envelope, Event, EventSchemaError, parse
from incidents.model import HandledEvent
from incidents.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class Consumer(Protocol):
    name: str
    handles: frozenset[type[Event]]

    async def handle(
        self, event: Event, envelope: Envelope, *, uow: UnitOfWork, now: datetime
    ) -> None: ...


class EventSource(Protocol):
    """Where a consumer's events come from: the database log, or a Kafka consumer group."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def next_batch(self) -> Sequence[Envelope]:
        """Events not yet committed; waits a while for some, and may return none."""
        ...

    async def commit(self) -> None:
        """Everything the last batch returned has been handled or parked."""
        ...

    async def park(self, envelope: Envelope, error: str, attempts: int) -> None:
        """Keep an event that cannot be handled, with the reason, for `incidents dlq`."""
        ...


async def wait_for_wake(wake: asyncio.Event, seconds: float) -> None:
    """Sleep until `wake` is set or `seconds` pass: wake-ups come from this process, the timeout
    catches work that other processes committed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)


def types_of(consumer: Consumer) -> frozenset[str]:
    return frozenset(t.type_name() for t in consumer.handles)


class ConsumerRunner:
    def __init__(
        self,
        consumer: Consumer,
        source: EventSource,
        uows: UnitOfWorkFactory,
        now: Callable[[], datetime],
        *,
        max_attempts: int = 5,
        first_backoff: float = 0.2,
    ) -> None:
        self.consumer = consumer
        self.source = source
        self.uows = uows
        self.now = now
        self.max_attempts = max_attempts
        self.first_backoff = first_backoff
        self._types = types_of(consumer)

    async def run(self) -> None:
        await self.source.start()
        try:
            while True:
                await self.drain_once()
        finally:
            await self.source.stop()

    async def drain_once(self) -> int:
        """Handle one batch; returns how many events it held."""
        batch = await self.source.next_batch()
        for envelope in batch:
            await self.process(envelope)
        await self.source.commit()
        return len(batch)

    async def process(self, envelope: Envelope) -> None:
        if envelope.type not in self._types:
            return
        try:
            event = parse(envelope)
        except EventSchemaError as exc:
            await self.source.park(envelope, str(exc), attempts=1)
            return
        delay = self.first_backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._handle_once(event, envelope)
                return
            except IntegrityError:
                # Another instance handled it between our check and our commit.
                if await self._already_handled(envelope.id):
                    return
                error = "integrity error"
            except Exception as exc:  # a handler fault: retry, then park
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "%s failed on %s (attempt %d): %s",
                    self.consumer.name,
                    envelope.id,
                    attempt,
                    error,
                )
            if attempt < self.max_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        await self.source.park(envelope, error, attempts=self.max_attempts)

    async def _handle_once(self, event: Event, envelope: Envelope) -> None:
        async with self.uows() as uow:
            key = (self.consumer.name, envelope.id)
            if await uow.session.get(HandledEvent, key) is not None:
                return
            now = self.now()
            await self.consumer.handle(event, envelope, uow=uow, now=now)
            uow.session.add(
                HandledEvent(consumer=self.consumer.name, event_id=envelope.id, handled_at=now)
            )

    async def _already_handled(self, event_id: str) -> bool:
        async with self.uows() as uow:
            key = (self.consumer.name, event_id)
            return await uow.session.get(HandledEvent, key) is not None
