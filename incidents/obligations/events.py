"""What happens to an obligation: opened, reminded, breached at its deadline, acknowledged."""

from __future__ import annotations

from datetime import datetime

from incidents.kernel.events import Event


class ObligationOpened(Event):
    name = "obligation.opened"
    obligation_id: str
    report_id: str
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
