"""Parked events, in either mode: what `incidents dlq list` shows and `dlq replay` sends back.

In the embedded mode they are rows of `dead_letters`; with Kafka, records on each consumer's
dead-letter topic. Replaying hands each event to its consumer again (`process`, the consumer's
runner); one that fails again is parked again, with the new error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from incidents.kernel.eventlog import DeadLetter
from incidents.kernel.events import Envelope
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from infra.eventlog import kafka


async def list_parked(
    uows: UnitOfWorkFactory,
    consumer: str | None = None,
    *,
    kafka_bootstrap: str | None,
    topic: str,
) -> list[dict[str, Any]]:
    """Every parked event (one consumer's, or all), oldest first."""
    if kafka_bootstrap:
        return await kafka.list_parked(kafka_bootstrap, consumer, topic=topic)
    async with uows() as uow:
        query = select(DeadLetter).order_by(col(DeadLetter.id))
        if consumer:
            query = query.where(DeadLetter.consumer == consumer)
        rows = list(await uow.session.exec(query))
    return [
        {
            "event_id": r.event_id,
            "type": r.event.get("type"),
            "subject": r.event.get("subject"),
            "error": r.error,
            "attempts": r.attempts,
            "consumer": r.consumer,
            "parked_at": r.parked_at,
            "replayed": r.replayed_at is not None,
        }
        for r in rows
    ]


async def replay(
    uows: UnitOfWorkFactory,
    consumer: str,
    process: Callable[[Envelope], Awaitable[None]],
    *,
    kafka_bootstrap: str | None,
    topic: str,
) -> int:
    """Send one consumer's parked events back to it; returns how many were replayed."""
    if kafka_bootstrap:
        return await kafka.replay_parked(kafka_bootstrap, consumer, topic=topic)
    async with uows() as uow:
        rows = list(
            await uow.session.exec(
                select(DeadLetter).where(
                    DeadLetter.consumer == consumer, col(DeadLetter.replayed_at).is_(None)
                )
            )
        )
    for row in rows:
        async with uows() as uow:
            parked = await uow.session.get(DeadLetter, row.id)
            assert parked is not None
            parked.replayed_at = datetime.now(UTC)
            uow.session.add(parked)
        await process(Envelope.model_validate(row.event))
    return len(rows)
