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
from incidents.policy.reviews import (
    APPROVAL,
    AUDIT,
    DECISION,
    EXCEPTION,
    MILESTONE,
    REVIEW_DUTIES,
    TOLD,
)

__all__ = ["APPROVAL", "AUDIT", "DECISION", "EXCEPTION", "MILESTONE", "REVIEW_DUTIES", "TOLD"]


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
    CONTINUE = "continue"  # the review found no reason to stop it (an audit passed, say)


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


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
    data_categories: list[str] = json_field(default_factory=list)
    # The vendor's AI Fact Sheet answers (San José's "nutrition facts"), by FACT_SHEET field.
    fact_sheet: dict[str, str] = json_field(default_factory=dict)
    approved_by: str | None = Field(default=None, max_length=320)
    approved_at: datetime | None = time_field(default=None)
    approval_rule: str | None = Field(default=None, max_length=120)  # e.g. "redondo-beach/approval"
    next_review_at: datetime | None = time_field(default=None)  # the next periodic audit
    created_at: datetime = time_field()


# The AI Fact Sheet's questions the inventory keeps (San José, Terms and Definitions: the
# "nutrition facts" of a system), as short field names and what each asks.
FACT_SHEET: dict[str, str] = {
    "intended_use": "What the system is for, and what it must not be used for",
    "model": "The model or algorithm, and who built it",
    "training_data": "The data it was trained on",
    "performance": "How well it performs, and how that was measured",
    "bias_testing": "How it was tested for biased outcomes",
    "human_oversight": "Where a person checks its output",
    "data_retention": "What it keeps of City data, and for how long",
}


class ApprovalRequest(SQLModel, table=True):
    """A department asks to use a new AI system; the approver the pack names decides."""

    __tablename__ = "system_requests"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    department: str = Field(max_length=200)
    vendor: str = Field(default="", max_length=200)
    purpose: str = Field(max_length=2000)
    data_categories: list[str] = json_field(default_factory=list)
    public_facing: bool = False
    pilot: bool = False
    fact_sheet: dict[str, str] = json_field(default_factory=dict)
    requested_by: str = Field(max_length=320)
    requested_at: datetime = time_field()
    pack: str = Field(max_length=60)
    approver_role: str = Field(max_length=40)
    status: RequestStatus = enum_field(RequestStatus, default=RequestStatus.PENDING)
    decided_by: str | None = Field(default=None, max_length=320)
    decided_at: datetime | None = time_field(default=None)
    reasons: str | None = Field(default=None, max_length=5000)
    system_id: str | None = Field(default=None, max_length=36)  # once approved


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
    report_ids: list[str] = json_field(default_factory=list)  # none for an audit or by hand
    citations: list[dict[str, str]] = json_field(default_factory=list)
    decision: Decision | None = enum_field(Decision, default=None, nullable=True)
    decided_by: str | None = Field(default=None, max_length=320)
    decided_at: datetime | None = time_field(default=None)
    conditions: str | None = Field(default=None, max_length=5000)
    expires_at: datetime | None = time_field(default=None)
    plan: dict[str, Any] | None = json_field(default=None)


configure_mappers()
