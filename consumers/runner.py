"""The one consumer loop, for every log (the database log or Kafka).

Events are handled in chunks, each chunk in one transaction together with a `HandledEvent` row
per event, so an event seen twice (a replay, a redelivery after a crash) changes nothing the
second time, and a busy log costs one commit per chunk rather than one per event. When a chunk
fails, its transaction is rolled back and its events are handled one by one: a handler that
fails on one event is retried with backoff; after `max_attempts` that event is parked with its
error in the dead-letter place and the consumer moves on to the next. An event that does not fit
its schema is parked at once: retrying cannot fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from incidents.kernel.eventlog import HandledEvent
from incidents.kernel.events import Envelope, Event, EventSchemaError, parse
from incidents.kernel.retry import retrying
from incidents.kernel.time import Now
from incidents.kernel.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class Incoming(NamedTuple):
    """An event to handle, with the envelope it came in (its id, subject and time)."""

    event: Event
    envelope: Envelope


class Consumer(Protocol):
    name: str
    handles: frozenset[type[Event]]

    async def handle(self, incoming: Sequence[Incoming], *, uow: UnitOfWork, now: datetime) -> None:
        """Handle these events in `uow`'s one transaction; raise to have none of it kept."""
        ...


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


def types_of(consumer: Consumer) -> frozenset[str]:
    return frozenset(t.type_name() for t in consumer.handles)


class ConsumerRunner:
    def __init__(
        self,
        consumer: Consumer,
        source: EventSource,
        uows: UnitOfWorkFactory,
        now: Now,
        *,
        max_attempts: int = 5,
        first_backoff: float = 0.2,
        chunk: int = 100,
    ) -> None:
        """`chunk`: events handled in one transaction. Larger saves commits; smaller lets the
        first effects (a notice to send) out sooner."""
        self.consumer = consumer
        self.source = source
        self.uows = uows
        self.now = now
        self.max_attempts = max_attempts
        self.first_backoff = first_backoff
        self.chunk = chunk
        self._types = types_of(consumer)

    async def run(self) -> None:
        """Read and handle until cancelled. While the log cannot be read (the database or the
        broker is away), try again with backoff: nothing is lost, since nothing was committed."""
        reading = retrying(f"{self.consumer.name}: reading its events", most=5.0)
        async for attempt in reading:
            with attempt:
                await self.source.start()
        try:
            while True:
                async for attempt in reading:
                    with attempt:
                        await self.drain_once()
        finally:
            await self.source.stop()

    async def drain_once(self) -> int:
        """Handle one batch from the source; returns how many events it held."""
        batch = await self.source.next_batch()
        incoming = [i for i in [await self._parse(e) for e in batch] if i is not None]
        for start in range(0, len(incoming), self.chunk):
            chunk = incoming[start : start + self.chunk]
            if len(chunk) > 1:
                try:
                    await self._handle_once(chunk)
                    continue
                except Exception as exc:
                    log.info(
                        "%s: a chunk of %d events failed (%s: %s); handling them one by one",
                        self.consumer.name,
                        len(chunk),
                        type(exc).__name__,
                        exc,
                    )
            for one in chunk:
                await self._handle_with_retries(one)
        await self.source.commit()
        return len(batch)

    async def process(self, envelope: Envelope) -> None:
        """Handle one event on its own, with retries (a replay from the dead-letter place)."""
        one = await self._parse(envelope)
        if one is not None:
            await self._handle_with_retries(one)

    async def _parse(self, envelope: Envelope) -> Incoming | None:
        if envelope.type not in self._types:
            return None
        try:
            return Incoming(parse(envelope), envelope)
        except EventSchemaError as exc:
            await self.source.park(envelope, str(exc), attempts=1)
            return None

    async def _handle_with_retries(self, one: Incoming) -> None:
        try:
            async for attempt in retrying(
                f"{self.consumer.name} on event {one.envelope.id}",
                attempts=self.max_attempts,
                first=self.first_backoff,
                most=30.0,
            ):
                with attempt:
                    await self._handle_or_skip(one)
        except Exception as exc:  # retried enough: park it with the last error
            await self.source.park(one.envelope, _error(exc), attempts=self.max_attempts)

    async def _handle_or_skip(self, one: Incoming) -> None:
        try:
            await self._handle_once([one])
        except IntegrityError:
            # Another instance may have handled it between our check and our commit.
            if not await self._already_handled(one.envelope.id):
                raise

    async def _handle_once(self, chunk: Sequence[Incoming]) -> None:
        async with self.uows() as uow:
            done = await self._handled(uow, [i.envelope.id for i in chunk])
            todo: dict[str, Incoming] = {}  # by id: a chunk may hold a redelivered copy
            for one in chunk:
                if one.envelope.id not in done:
                    todo.setdefault(one.envelope.id, one)
            if not todo:
                return
            now = self.now()
            await self.consumer.handle(list(todo.values()), uow=uow, now=now)
            await uow.insert(
                HandledEvent,
                [
                    {"consumer": self.consumer.name, "event_id": event_id, "handled_at": now}
                    for event_id in todo
                ],
            )

    async def _already_handled(self, event_id: str) -> bool:
        async with self.uows() as uow:
            return bool(await self._handled(uow, [event_id]))

    async def _handled(self, uow: UnitOfWork, event_ids: Sequence[str]) -> set[str]:
        """Which of these events this consumer has already handled."""
        rows = await uow.session.exec(
            select(HandledEvent.event_id).where(
                HandledEvent.consumer == self.consumer.name,
                col(HandledEvent.event_id).in_(event_ids),
            )
        )
        return set(rows)


def _error(exc: Exception) -> str:
    if isinstance(exc, IntegrityError):
        return "integrity error"
    return f"{type(exc).__name__}: {exc}"
