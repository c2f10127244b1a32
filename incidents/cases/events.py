"""What happens to a security case. Each is an event (for consumers) and an audit entry."""

from __future__ import annotations

from incidents.kernel.events import Event


class CaseOpened(Event):
    name = "security_case.opened"
    case_id: str
    reference: str
    report_id: str
    severity: str
    by: str  # "system" when a rule opened it


class CaseReportLinked(Event):
    name = "security_case.report_linked"
    case_id: str
    reference: str
    report_id: str
    by: str


class CaseAcknowledged(Event):
    name = "security_case.acknowledged"
    case_id: str
    reference: str
    by: str


class CasePhaseChanged(Event):
    name = "security_case.phase_changed"
    case_id: str
    reference: str
    before: str
    after: str
    reason: str | None
    by: str
