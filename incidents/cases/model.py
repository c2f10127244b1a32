"""A security case, the reports it covers, and its phases.

The case's page and tasks are obligations (`incidents.obligations`), with the same clocks,
reminders, escalation, notices and acknowledgement links as any other; their `duty` marks them
(`policy.cases.PAGE_DUTY`, `TASK_DUTY`). The statutory breach clocks stay on the reports.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import enum_field, json_field, time_field


class Phase(StrEnum):
    """NIST SP 800-61 Rev. 3's incident response, by the CSF 2.0 functions it sits in."""

    DETECT_ANALYSE = "detect_analyse"  # Detect: adverse event analysis
    CONTAIN = "contain"  # Respond: incident mitigation
    ERADICATE = "eradicate"  # Respond: incident mitigation
    RECOVER = "recover"  # Recover: incident recovery plan execution
    REVIEW = "post_incident_review"  # Identify: improvement (lessons learned)
    CLOSED = "closed"


PHASES: tuple[Phase, ...] = tuple(Phase)

PHASE_NAMES: dict[Phase, str] = {
    Phase.DETECT_ANALYSE: "Detect and analyse",
    Phase.CONTAIN: "Contain",
    Phase.ERADICATE: "Eradicate",
    Phase.RECOVER: "Recover",
    Phase.REVIEW: "Post-incident review (lessons learned)",
    Phase.CLOSED: "Closed",
}


class Case(SQLModel, table=True):
    __tablename__ = "security_cases"

    number: int | None = Field(default=None, primary_key=True)  # SEC-2026-000001
    id: str = Field(unique=True, max_length=36)
    phase: Phase = enum_field(Phase, length=30, default=Phase.DETECT_ANALYSE)
    severity: str = Field(max_length=20)  # low, moderate, high, critical
    because: list[str] = json_field(default_factory=list)  # why that severity, in words
    owner_role: str = Field(max_length=40)  # who owns it until a person takes it
    owner: str | None = Field(default=None, max_length=320)  # the person who took it
    ai_system: str = Field(max_length=200)
    plans: list[str] = json_field(default_factory=list)  # the response plans' titles
    rules: list[str] = json_field(default_factory=list)  # "pack/rule" that opened it
    # The duties of tasks the plan does not require before closing (the rest are required).
    optional_tasks: list[str] = json_field(default_factory=list)
    citations: list[dict[str, str]] = json_field(default_factory=list)
    timezone: str = Field(max_length=64)
    opened_at: datetime = time_field()
    opened_by: str = Field(max_length=320)  # "system" (a rule) or the person who opened it
    acknowledged_at: datetime | None = time_field(default=None)
    acknowledged_by: str | None = Field(default=None, max_length=320)
    closed_at: datetime | None = time_field(default=None)

    @property
    def reference(self) -> str:
        return format_reference(self.opened_at.year, self.number or 0)


class CaseReport(SQLModel, table=True):
    """A report the case covers. A report is in one case at most: its key is the report."""

    __tablename__ = "case_reports"

    report_id: str = Field(primary_key=True, foreign_key="reports.id", max_length=36)
    case_id: str = Field(foreign_key="security_cases.id", index=True, max_length=36)
    linked_at: datetime = time_field()
    linked_by: str = Field(max_length=320)


def format_reference(year: int, number: int) -> str:
    return f"SEC-{year}-{number:06d}"


configure_mappers()
