"""An obligation: someone must be told of a report by a deadline. Its clocks remind and breach."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field


class ObligationStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    BREACHED = "breached"  # its deadline passed unacknowledged (it can still be acknowledged)


class ClockKind(StrEnum):
    REMINDER = "reminder"
    DEADLINE = "deadline"


class ClockStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"  # its obligation was acknowledged first
    HELD = "held"  # its obligation is on hold: it waits, and moves by the time held on release


class Obligation(SQLModel, table=True):
    """Someone must be told of a report, or do a duty, by `due_at`; its clocks remind and
    escalate.

    Most obligations are about one report (`report_id`). A few duties are about something
    else: an AI system's audit, a review opened by hand or by an audit, a request to approve
    a new system. Those have no report, and `subject_id` names what they are about.
    """

    __tablename__ = "obligations"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str | None = Field(
        default=None, foreign_key="reports.id", index=True, max_length=36, nullable=True
    )
    subject_id: str | None = Field(default=None, index=True, max_length=36)
    role: str = Field(max_length=40)
    recipients: list[dict[str, str]] = json_field()  # [{name, email}]
    due_at: datetime = time_field()
    timezone: str = Field(max_length=64)
    status: ObligationStatus = enum_field(ObligationStatus, default=ObligationStatus.OPEN)
    rules: list[str] = json_field()
    citations: list[dict[str, str]] = json_field()
    interpretation: str | None = None
    action: str | None = None  # what the people told must do (the rule's `action`)
    duty: str | None = Field(default=None, max_length=60)  # None: be told of the report
    holidays: list[str] | None = json_field(default=None)  # days off that moved the deadline
    escalation: list[dict[str, Any]] = json_field(default_factory=list)  # levels still to come
    level: int = 0  # 0: named by the policy; n: the n-th escalation level
    escalated_from: str | None = Field(default=None, max_length=36)
    late: bool = False  # the deadline had passed when the obligation opened
    created_at: datetime = time_field()
    breached_at: datetime | None = time_field(default=None)
    acknowledged_at: datetime | None = time_field(default=None)
    acknowledged_by: str | None = Field(default=None, max_length=320)
    delivery_error: str | None = None  # a permanent refusal from the mail server
    # On hold (e.g. law enforcement asked to delay a breach notice): since when, why, by whom.
    held_at: datetime | None = time_field(default=None)
    hold_reason: str | None = Field(default=None, max_length=500)
    held_by: str | None = Field(default=None, max_length=320)
    held_seconds: float = 0  # time spent on hold so far, over every hold ended


def subject_of(obligation: Obligation) -> str:
    """What an obligation's events are about: its report, or else what its duty is about."""
    return obligation.report_id or obligation.subject_id or obligation.id


class ClockRow(SQLModel, table=True):
    """A moment something must happen: a reminder, or the deadline itself."""

    __tablename__ = "clocks"
    __table_args__ = (sa.Index("ix_clocks_pending_due", "status", "due_at"),)

    id: str = Field(primary_key=True, max_length=80)  # obligation id + kind: stable across replays
    obligation_id: str = Field(foreign_key="obligations.id", index=True, max_length=36)
    kind: ClockKind = enum_field(ClockKind)
    due_at: datetime = time_field()
    status: ClockStatus = enum_field(ClockStatus, default=ClockStatus.PENDING)
    fired_at: datetime | None = time_field(default=None)


# Rows are built with `model_construct`, which needs the ORM set up: do it at import.
configure_mappers()
