"""The router: applies policy to what happens after intake.

A breached obligation, or a notice the mail server refused for good, goes up its escalation
chain; a confirmed acquisition of personal information opens the statutory breach-notice clocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from consumers.runner import Incoming
from incidents.events import (
    Event,
    NoticeFailed,
    ObligationBreached,
    PersonalInformationAcquired,
)
from incidents.model import Obligation
from incidents.policy import PolicySet
from incidents.services import escalate, open_statutory_clocks
from incidents.unit_of_work import UnitOfWork


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
            await open_statutory_clocks(event, uow=uow, policy=self.policy, now=now)
            return
        assert isinstance(event, ObligationBreached | NoticeFailed)
        if isinstance(event, NoticeFailed):
            # Nobody can acknowledge a notice they never got: go up the chain now.
            obligation = await uow.session.get(Obligation, event.obligation_id)
            if obligation is not None:
                obligation.delivery_error = event.error
                uow.session.add(obligation)
        await escalate(event.obligation_id, uow=uow, directory=self.policy.directory, now=now)
