"""What happens to an obligation: opened, reminded, breached at its deadline, acknowledged, held
and released."""

from __future__ import annotations

from datetime import datetime

from incidents.kernel.events import Event


class ObligationOpened(Event):
    name = "obligation.opened"
    obligation_id: str
    report_id: str | None  # None: a duty about no report (see `Obligation.subject_id`)
    subject_id: str | None = None
    role: str
    level: int  # 0: named by the policy; n: an escalation
    late: bool


class ReminderDue(Event):
    name = "obligation.reminder_due"
    obligation_id: str
    clock_id: str
    due_at: datetime
    late: bool  # fired well after its time, e.g. after a restart


class ObligationBreached(Event):
    name = "obligation.breached"
    obligation_id: str
    due_at: datetime
    late: bool


class ObligationAcknowledged(Event):
    name = "obligation.acknowledged"
    obligation_id: str
    by: str


class ObligationHeld(Event):
    name = "obligation.held"
    obligation_id: str
    reason: str  # e.g. a law-enforcement agency asked for the notice to be delayed
    by: str


class ObligationReleased(Event):
    name = "obligation.released"
    obligation_id: str
    by: str
    held_seconds: float  # how long this hold lasted
    due_at: datetime  # the deadline, moved on by that time
