"""The cases consumer: opens a security case when a rule says so, and stops a case's page when
someone acknowledges it from the email.

- `ReportFiled` (or `ReportClassified`, when a triager gives a report its kind) with
  `opens: [security_case]`: the case opens (once per report, however often
  the event arrives or however many workers read it: a report is in one case at most).
- `ObligationAcknowledged` of a page step: the whole case is acknowledged as that person, so
  every other open step of the chain stops too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from consumers.runner import Incoming
from incidents.cases import service as cases
from incidents.kernel.actor import Principal
from incidents.kernel.events import Event
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.obligations import service as obligations
from incidents.obligations.events import ObligationAcknowledged
from incidents.policy import PolicySet
from incidents.policy.cases import PAGE_DUTY
from incidents.reports import service as reports
from incidents.reports.events import ReportClassified, ReportFiled


@dataclass
class Cases:
    policy: PolicySet

    name = "cases"
    handles: frozenset[type[Event]] = frozenset(
        {ReportFiled, ReportClassified, ObligationAcknowledged}
    )

    async def handle(self, incoming: Sequence[Incoming], *, uow: UnitOfWork, now: datetime) -> None:
        for event, _ in incoming:
            if isinstance(event, ReportFiled):
                if "security_case" in event.opens:
                    report = await reports.report_by_id(event.report_id, uow=uow)
                    await cases.open_for_report(report, uow=uow, policy=self.policy, now=now)
            elif isinstance(event, ObligationAcknowledged):
                found = await obligations.obligations_by_id([event.obligation_id], uow=uow)
                step = found.get(event.obligation_id)
                if step is None or step.duty != PAGE_DUTY or step.report_id is None:
                    continue
                case = await cases.case_of_report(step.report_id, uow=uow)
                if case is not None:
                    await cases.acknowledge(case, Principal(email=event.by), uow=uow, now=now)
