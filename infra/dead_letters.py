"""Parked events, in either mode: what `incidents dlq list` shows and `dlq replay` sends back.

In the embedded mode they are rows of `dead_letters`; with Kafka, records on each consumer's
dead-letter topic. Replaying hands each event to its consumer again; one that fails again is
parked again, with the new error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from consumers.runner import ConsumerRunner
from incidents.events import Envelope
from incidents.model import DeadLetter
from infra import kafka
from infra.bootstrap import Runtime


async def list_parked(rt: Runtime, consumer: str | None = None) -> list[dict[str, Any]]:
    bootstrap = rt.settings.kafka_bootstrap
    if bootstrap:
        return await kafka.list_parked(bootstrap, consumer, topic=rt.settings.kafka_topic)
    async with rt.uows() as uow:
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


async def replay(rt: Runtime, consumer: str) -> int:
    """Send one consumer's parked events back to it; returns how many were replayed."""
    bootstrap = rt.settings.kafka_bootstrap
    if bootstrap:
        return await kafka.replay_parked(bootstrap, consumer, topic=rt.settings.kafka_topic)
    [runner] = rt.runners({consumer})
    async with rt.uows() as uow:
        rows = list(
            await uow.session.exec(
                select(DeadLetter).where(
                    DeadLetter.consumer == consumer, col(DeadLetter.replayed_at).is_(None)
                )
            )
        )
    for row in rows:
        await _replay_one(rt, runner, row)
    return len(rows)


async def _replay_one(rt: Runtime, runner: ConsumerRunner, row: DeadLetter) -> None:
    async with rt.uows() as uow:
        parked = await uow.session.get(DeadLetter, row.id)
        assert parked is not None
        parked.replayed_at = datetime.now(UTC)
        uow.session.add(parked)
    await runner.process(Envelope.model_validate(row.event))
