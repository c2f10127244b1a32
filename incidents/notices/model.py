"""A notice: an email the service owes someone, and what became of it.

The notices table is the record of who was told what, and when the mail server accepted it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field


class NoticeStatus(StrEnum):
    PENDING = "pending"  # stored, not yet accepted by the mail server
    SENT = "sent"
    FAILED = "failed"  # refused for good (and escalated)


class NoticePurpose(StrEnum):
    NOTICE = "notice"  # the first word to someone a policy names
    REMINDER = "reminder"
    ESCALATION = "escalation"  # to the next level, after a breach or a refusal


class Notice(SQLModel, table=True):
    """An email the service owes someone, and what became of it: the record of who was told what."""

    __tablename__ = "notices"
    __table_args__ = (sa.Index("ix_notices_pending", "status", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=36)  # the id of the event that asked for it
    # The obligation it tells of; none for an answer to someone who wrote to the service.
    obligation_id: str | None = Field(
        default=None, foreign_key="obligations.id", index=True, max_length=36, nullable=True
    )
    # The report it is about; none for a duty about no report (an AI system's audit, say).
    report_id: str | None = Field(default=None, index=True, max_length=36, nullable=True)
    purpose: NoticePurpose = enum_field(NoticePurpose)
    recipients: list[str] = json_field()
    subject: str
    text_body: str
    html_body: str
    message_id: str = Field(max_length=255)
    # Headers beyond the usual, e.g. In-Reply-To, References and Auto-Submitted on an answer.
    headers: dict[str, str] = json_field(default_factory=dict)
    status: NoticeStatus = enum_field(NoticeStatus, default=NoticeStatus.PENDING)
    attempts: int = 0
    next_attempt_at: datetime = time_field()
    last_error: str | None = None
    created_at: datetime = time_field()
    sent_at: datetime | None = time_field(default=None)


# Rows are built with `model_construct`, which needs the ORM set up: do it at import.
configure_mappers()
