"""A message that came in by email, kept whole with what became of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field


class Outcome(StrEnum):
    FILED = "filed"  # a new report
    THREADED = "threaded"  # a reply, added to the report it answers
    IGNORED = "ignored"  # an auto-reply, a list, a bounce: nothing filed, nobody answered
    QUARANTINED = "quarantined"  # unreadable or refused: kept whole, for a person to look at
    RELEASED = "released"  # taken out of quarantine by a person, and filed


class InboundMail(SQLModel, table=True):
    __tablename__ = "inbound_mail"

    id: str = Field(primary_key=True, max_length=64)  # the SHA-256 of the raw bytes
    message_id: str = Field(max_length=998, index=True)
    sender: str | None = Field(default=None, max_length=320, index=True)
    subject: str = Field(default="", max_length=998)
    raw: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    received_at: datetime = time_field()
    outcome: Outcome = enum_field(Outcome)
    reason: str = Field(default="", max_length=2000)  # why ignored or quarantined, in words
    report_id: str | None = Field(default=None, max_length=36, index=True)
    attachments: list[dict[str, Any]] = json_field(default_factory=list)  # name, type, size, sha256


configure_mappers()
