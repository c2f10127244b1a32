"""The router: applies policy to what happens after intake.

A breached obligation, or a notice the mail server refused for good, goes up its escalation
chain; a confirmed acquisition of personal information opens the statutory breach-notice clocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from consumers.runner import Incoming
from incidents.kernel.events import Event
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.notices.events import NoticeFailed
from incidents.obligations import service as obligations
from incidents.obligations.events import ObligationBreached
from incidents.policy import PolicySet
from incidents.reports import service as reports
from incidents.reports.events import PersonalInformationAcquired


@dataclass
class Router:
    policy: PolicySet

    name = "router"
    handles: frozenset[type[Event]] = frozenset(
        {ObligationBreached, NoticeFailed, PersonalInformationAcquired}
    )

    async def handle(self, incoming: Sequence[Incoming], *, uow: UnitOfWork, now: datetime) -> None:
        for event, _ in incoming:
            await self._route(event, uow=uow, now=now)

    async def _route(self, event: Event, *, uow: UnitOfWork, now: datetime) -> None:
        if isinstance(event, PersonalInformationAcquired):
            await reports.open_statutory_clocks(event, uow=uow, policy=self.policy, now=now)
            return
        assert isinstance(event, ObligationBreached | NoticeFailed)
        if isinstance(event, NoticeFailed):
            # Nobody can acknowledge a notice they never got: go up the chain now.
            await obligations.record_refusal(event.obligation_id, event.error, uow=uow)
        found = await obligations.obligations_by_id([event.obligation_id], uow=uow)
        if event.obligation_id not in found:
            return
        report_id = found[event.obligation_id].report_id
        # A duty about no report names organisation-wide roles (the CIO, an approver): no
        # department picks its people.
        department = (
            (await reports.report_by_id(report_id, uow=uow)).reporter_department
            if report_id
            else ""
        )
        await obligations.escalate(
            event.obligation_id,
            department=department,
            uow=uow,
            directory=self.policy.directory,
            now=now,
        )
