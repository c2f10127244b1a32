"""An AI system in the inventory, and the reviews of it.

A review's decision clock, its exception's expiry and its phase-out milestones are obligations
(`incidents.obligations`), marked by their `duty` (`DECISION`, `EXCEPTION`, `MILESTONE`), so they
use the one clock mechanism, the notices and the acknowledgement links as they are.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field
from incidents.policy.reviews import DECISION, EXCEPTION, MILESTONE, REVIEW_DUTIES, TOLD

__all__ = ["DECISION", "EXCEPTION", "MILESTONE", "REVIEW_DUTIES", "TOLD"]


class SystemStatus(StrEnum):
    ACTIVE = "active"  # approved and in use
    UNREGISTERED = "unregistered"  # reported on, but nobody approved it (not in the inventory)
    UNDER_REVIEW = "under_review"
    HALTED = "halted"
    EXCEPTED = "excepted"  # kept in use by an express exception, until it expires
    PHASING_OUT = "phasing_out"
    RETIRED = "retired"


class ReviewStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class Decision(StrEnum):
    HALT = "halt"
    EXCEPTION = "exception"
    PHASE_OUT = "phase_out"


class AISystem(SQLModel, table=True):
    __tablename__ = "ai_systems"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(unique=True, max_length=200)
    department: str = Field(default="", max_length=200)
    vendor: str = Field(default="", max_length=200)
    purpose: str = Field(default="", max_length=2000)
    public_facing: bool = False
    pilot: bool = False
    status: SystemStatus = enum_field(SystemStatus, default=SystemStatus.ACTIVE)
    approved_by: str | None = Field(default=None, max_length=320)
    approved_at: datetime | None = time_field(default=None)
    created_at: datetime = time_field()


class Review(SQLModel, table=True):
    __tablename__ = "system_reviews"

    id: str = Field(primary_key=True, max_length=36)
    system_id: str = Field(foreign_key="ai_systems.id", index=True, max_length=36)
    status: ReviewStatus = enum_field(ReviewStatus, default=ReviewStatus.OPEN)
    pack: str = Field(max_length=60)
    decider_role: str = Field(max_length=40)
    opened_by: str = Field(max_length=320)  # rule:pack/rule, threshold:pack, exception lapsed, …
    opened_at: datetime = time_field()
    reason: str = Field(max_length=2000)
    report_ids: list[str] = json_field(default_factory=list)
    citations: list[dict[str, str]] = json_field(default_factory=list)
    decision: Decision | None = enum_field(Decision, default=None, nullable=True)
    decided_by: str | None = Field(default=None, max_length=320)
    decided_at: datetime | None = time_field(default=None)
    conditions: str | None = Field(default=None, max_length=5000)
    expires_at: datetime | None = time_field(default=None)
    plan: dict[str, Any] | None = json_field(default=None)


configure_mappers()
