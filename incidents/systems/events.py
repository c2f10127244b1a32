"""What happens to AI systems and their reviews. Each is an event and an audit entry."""

from __future__ import annotations

from incidents.kernel.events import Event


class ReviewOpened(Event):
    name = "system_review.opened"
    review_id: str
    system_id: str
    system: str
    opened_by: str
    halted: bool


class ReviewDecided(Event):
    name = "system_review.decided"
    review_id: str
    system_id: str
    system: str
    decision: str
    by: str


class SystemStatusChanged(Event):
    name = "ai_system.status_changed"
    system_id: str
    system: str
    before: str
    after: str
    why: str


class ApprovalRequested(Event):
    name = "system_approval.requested"
    request_id: str
    system: str
    department: str
    by: str


class ApprovalDecided(Event):
    name = "system_approval.decided"
    request_id: str
    system: str
    approved: bool
    by: str
