"""The event log's tables: the outbox, what each consumer has handled, and what it parked.

In the embedded mode the outbox *is* the log that consumers read; in production the outbox relay
hands its rows to Kafka. Either way an event row is written in the same transaction as the
change it announces (`UnitOfWork`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel, col, select

from incidents.kernel.columns import json_field, time_field

if TYPE_CHECKING:  # the unit of work writes these tables, so it imports this module
    from incidents.kernel.unit_of_work import UnitOfWork


class EventRow(SQLModel, table=True):
    """The outbox and, in the embedded mode, the event log itself.

    Rows are appended in the same transaction as the change they announce. `seq` orders them;
    `published_at` is set once the relay has handed a row to Kafka.
    """

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_unpublished", "published_at", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=36)
    type: str = Field(max_length=120)
    subject: str = Field(max_length=36)  # the report id: the Kafka key, so a report stays in order
    time: datetime = time_field()
    data: dict[str, Any] = json_field()
    published_at: datetime | None = time_field(default=None)


class HandledEvent(SQLModel, table=True):
    """A consumer has applied an event; written in the same transaction as the effect."""

    __tablename__ = "handled_events"

    consumer: str = Field(primary_key=True, max_length=60)
    event_id: str = Field(primary_key=True, max_length=36)
    handled_at: datetime = time_field()


class ConsumerPosition(SQLModel, table=True):
    """How far a consumer has read the embedded log."""

    __tablename__ = "consumer_positions"

    consumer: str = Field(primary_key=True, max_length=60)
    position: int = 0


class DeadLetter(SQLModel, table=True):
    """An event a consumer could not handle after retries, kept with the reason."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    consumer: str = Field(max_length=60)
    event_id: str = Field(max_length=36)
    event: dict[str, Any] = json_field()
    error: str
    attempts: int
    parked_at: datetime = time_field()
    replayed_at: datetime | None = time_field(default=None)


@dataclass(frozen=True)
class Unpublished:
    """Events committed and not yet handed to Kafka (production mode)."""

    count: int
    oldest: datetime | None


async def unpublished(*, uow: UnitOfWork) -> Unpublished:
    count, oldest = (
        await uow.session.exec(
            select(func.count(), func.min(EventRow.time)).where(
                col(EventRow.published_at).is_(None)
            )
        )
    ).one()
    return Unpublished(count=count, oldest=oldest)


# Set the ORM up now rather than at the first query: rows are built with `model_construct`,
# which sets attributes through the ORM's instrumentation and fails if it is not set up yet.
configure_mappers()
