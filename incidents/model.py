"""The tables: reports, their obligations and clocks, notices sent, and the event log.

Times are timezone-aware UTC everywhere inside; local time is for display only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; gives back aware datetimes on SQLite too (which keeps no offsets)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: every stored time must carry an offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw: Any) -> Any:
    return Field(sa_type=sa.JSON, **kw)


class Report(SQLModel, table=True):
    __tablename__ = "reports"

    number: int | None = Field(default=None, primary_key=True)  # the reference: AI-2026-000123
    id: str = Field(unique=True, max_length=36)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=200)
    description: str
    discovered_at: datetime = _time()
    reported_at: datetime = _time()
    reporter_name: str = Field(max_length=200)
    reporter_email: str = Field(max_length=320)
    reporter_department: str = Field(max_length=200)
    ai_system: str = Field(max_length=200)
    data_categories: list[str] = _json(default_factory=list)
    policies: list[str] = _json(default_factory=list)
    channel: str = Field(default="api", max_length=20)  # web, api or email
    receipt_hash: str = Field(max_length=64)  # sha256 of the receipt code; the code is not kept

    @property
    def reference(self) -> str:
        return format_reference(self.reported_at.year, self.number or 0)


def format_reference(year: int, number: int) -> str:
    return f"AI-{year}-{number:06d}"


class Obligation(SQLModel, table=True):
    """Someone must be told of a report by `due_at`; its clocks remind and escalate."""

    __tablename__ = "obligations"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="reports.id", index=True, max_length=36)
    role: str = Field(max_length=40)
    recipients: list[dict[str, str]] = _json()  # [{name, email}]
    due_at: datetime = _time()
    timezone: str = Field(max_length=64)
    status: str = Field(default="open", max_length=20)  # open, acknowledged, breached
    rules: list[str] = _json()
    citations: list[dict[str, str]] = _json()
    interpretation: str | None = None
    escalation: list[dict[str, Any]] = _json(default_factory=list)  # levels still to come
    level: int = 0  # 0: named by the policy; n: the n-th escalation level
    escalated_from: str | None = Field(default=None, max_length=36)
    late: bool = False  # the deadline had passed when the obligation opened
    created_at: datetime = _time()
    breached_at: datetime | None = _time(default=None)
    acknowledged_at: datetime | None = _time(default=None)
    acknowledged_by: str | None = Field(default=None, max_length=320)
    delivery_error: str | None = None  # a permanent refusal from the mail server


class ClockRow(SQLModel, table=True):
    """A moment something must happen: a reminder, or the deadline itself."""

    __tablename__ = "clocks"
    __table_args__ = (sa.Index("ix_clocks_pending_due", "status", "due_at"),)

    id: str = Field(primary_key=True, max_length=80)  # obligation id + kind: stable across replays
    obligation_id: str = Field(foreign_key="obligations.id", index=True, max_length=36)
    kind: str = Field(max_length=20)  # reminder or deadline
    due_at: datetime = _time()
    status: str = Field(default="pending", max_length=20)  # pending, fired, cancelled
    fired_at: datetime | None = _time(default=None)


class Notice(SQLModel, table=True):
    """An email the service owes someone, and what became of it: the record of who was told what."""

    __tablename__ = "notices"
    __table_args__ = (sa.Index("ix_notices_pending", "status", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=36)  # the id of the event that asked for it
    obligation_id: str = Field(foreign_key="obligations.id", index=True, max_length=36)
    report_id: str = Field(index=True, max_length=36)
    purpose: str = Field(max_length=20)  # notice, reminder, escalation
    recipients: list[str] = _json()
    subject: str
    text_body: str
    html_body: str
    message_id: str = Field(max_length=255)
    status: str = Field(default="pending", max_length=20)  # pending, sent, failed
    attempts: int = 0
    next_attempt_at: datetime = _time()
    last_error: str | None = None
    created_at: datetime = _time()
    sent_at: datetime | None = _time(default=None)


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
    time: datetime = _time()
    data: dict[str, Any] = _json()
    published_at: datetime | None = _time(default=None)


class HandledEvent(SQLModel, table=True):
    """A consumer has applied an event; written in the same transaction as the effect."""

    __tablename__ = "handled_events"

    consumer: str = Field(primary_key=True, max_length=60)
    event_id: str = Field(primary_key=True, max_length=36)
    handled_at: datetime = _time()


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
    event: dict[str, Any] = _json()
    error: str
    attempts: int
    parked_at: datetime = _time()
    replayed_at: datetime | None = _time(default=None)


# Set the ORM up now rather than at the first query: services build rows with `model_construct`,
# which sets attributes through the ORM's instrumentation and fails if it is not set up yet.
configure_mappers()
