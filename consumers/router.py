"""The router: applies the escalation chain a policy gave an obligation when it is breached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from incidents.events import Envelope, Event, NoticeFailed, ObligationBreached
from incidents.model import Obligation
from incidents.policy import Directory
from incidents.services import escalate
from incidents.unit_of_work import UnitOfWork


@dataclass
class Router:
    directory: Directory

    name = "router"
    handles: frozenset[type[Event]] = frozenset({ObligationBreached, NoticeFailed})

    async def handle(
        self, event: Event, envelope: Envelope, *, uow: UnitOfWork, now: datetime
    ) -> None:
        assert isinstance(event, ObligationBreached | NoticeFailed)
        if isinstance(event, NoticeFailed):
            # Nobody can acknowledge a notice they never got: go up the chain now.
            obligation = await uow.session.get(Obligation, event.obligation_id)
            if obligation is not None:
                obligation.delivery_error = event.error
                uow.session.add(obligation)
        await escalate(event.obligation_id, uow=uow, directory=self.directory, now=now)
