"""The reviews consumer: sunset reviews of AI systems, from what happens to reports.

- `ReportFiled` (or `ReportClassified`): the report is linked to its system in the inventory,
  and a review opens when
  a rule says `opens: [sunset_review]` or the pack's threshold is crossed (a report that would
  open another review while one is open joins it).
- `ObligationBreached` of an exception's expiry: the exception lapsed, the review opens again.
- `ObligationBreached` of a periodic audit: the audit fell due, and the system's review opens.
- `ObligationAcknowledged` of a phase-out milestone: after the last, the system is retired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from consumers.runner import Incoming
from incidents.kernel.events import Event
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.obligations import service as obligations
from incidents.obligations.events import ObligationAcknowledged, ObligationBreached
from incidents.policy import PolicySet
from incidents.policy.reviews import AUDIT, EXCEPTION, MILESTONE
from incidents.reports import service as reports
from incidents.reports.events import ReportClassified, ReportFiled
from incidents.systems import service as systems


@dataclass
class Reviews:
    policy: PolicySet

    name = "reviews"
    handles: frozenset[type[Event]] = frozenset(
        {ReportFiled, ReportClassified, ObligationBreached, ObligationAcknowledged}
    )

    async def handle(self, incoming: Sequence[Incoming], *, uow: UnitOfWork, now: datetime) -> None:
        for event, _ in incoming:
            if isinstance(event, ReportFiled):
                report = await reports.report_by_id(event.report_id, uow=uow)
                await systems.report_arrived(report, uow=uow, policy=self.policy, now=now)
                continue
            assert isinstance(event, ObligationBreached | ObligationAcknowledged)
            found = await obligations.obligations_by_id([event.obligation_id], uow=uow)
            obligation = found.get(event.obligation_id)
            duty = obligation.duty if obligation is not None else None
            if obligation is None or duty is None:
                continue
            if isinstance(event, ObligationBreached) and duty.startswith(EXCEPTION):
                await systems.exception_lapsed(obligation, uow=uow, policy=self.policy, now=now)
            elif isinstance(event, ObligationBreached) and duty.startswith(AUDIT):
                await systems.audit_due(obligation, uow=uow, policy=self.policy, now=now)
            elif isinstance(event, ObligationAcknowledged) and duty.startswith(MILESTONE):
                await systems.milestone_done(obligation, uow=uow, now=now)
