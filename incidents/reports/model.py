"""A report: what a member of staff saw, when, and about which AI system."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field


class Channel(StrEnum):
    """How a report reached the service."""

    WEB = "web"
    API = "api"
    EMAIL = "email"
    EVENT = "event"  # published by another system, as a CloudEvent


class Report(SQLModel, table=True):
    __tablename__ = "reports"
    __table_args__ = (
        sa.Index("ix_reports_idempotency_key", "idempotency_key", unique=True),
        sa.Index("ix_reports_event_key", "event_key", unique=True),
    )

    number: int | None = Field(default=None, primary_key=True)  # the reference: AI-2026-000123
    id: str = Field(unique=True, max_length=36)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=200)
    description: str
    discovered_at: datetime = time_field()
    reported_at: datetime = time_field()
    reporter_name: str = Field(max_length=200)
    reporter_email: str = Field(max_length=320)
    reporter_department: str = Field(max_length=200)
    ai_system: str = Field(max_length=200)
    # The system in the inventory (incidents.systems), once known: given by the caller, or
    # matched by name when the report arrives.
    ai_system_id: str | None = Field(default=None, max_length=36, index=True)
    data_categories: list[str] = json_field(default_factory=list)
    policies: list[str] = json_field(default_factory=list)
    channel: Channel = enum_field(Channel, default=Channel.API)
    receipt_hash: str = Field(max_length=64)  # sha256 of the receipt code; the code is not kept
    # A client's Idempotency-Key, and the sha256 of the body it came with: a retry with the same
    # key and body gets this report back instead of filing another. Cleared after a day.
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)
    # A report another system published as an event: the event's source, and the SHA-256 of its
    # source and id, which files it once however often it is delivered.
    source: str | None = Field(default=None, max_length=500)
    event_key: str | None = Field(default=None, max_length=64)

    @property
    def reference(self) -> str:
        return format_reference(self.reported_at.year, self.number or 0)


def format_reference(year: int, number: int) -> str:
    return f"AI-{year}-{number:06d}"


# ASCII digits only (str.isdigit takes any script's), and no more than a report number can be.
_REFERENCE = re.compile(r"AI-([0-9]{4})-([0-9]{6,9})", re.ASCII)


def parse_reference(reference: str) -> tuple[int, int] | None:
    """(year, number) of a reference such as 'ai-2026-000123'; None if it is not one."""
    found = _REFERENCE.fullmatch(reference.strip().upper())
    return (int(found[1]), int(found[2])) if found else None


# Rows are built with `model_construct`, which needs the ORM set up: do it at import.
configure_mappers()
