"""The clock keeper: APScheduler wakes the process every tick to fire the clocks that fell due.

Clocks are rows (`incidents.obligations.model.ClockRow`), not scheduler jobs: a restart loses
none, and the first sweep after a restart fires at once, marked late, every clock that fell due
meanwhile. APScheduler's memory store holds one interval job; it keeps no state worth losing.
What firing means is the domain's (`incidents.obligations.clocks.fire_due_clocks`); the
composition root hands it to the keeper.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from incidents.kernel.time import Now
from incidents.kernel.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class FireDue(Protocol):
    def __call__(self, *, uow: UnitOfWork, now: datetime, limit: int) -> Awaitable[int]:
        """Fire up to `limit` clocks due by `now` in `uow`; return how many fired."""
        ...


class ClockKeeper:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        now: Now,
        fire_due: FireDue,
        *,
        tick_seconds: float = 1.0,
        batch: int = 500,
    ) -> None:
        self.uows = uows
        self.now = now
        self.fire_due = fire_due
        self.tick_seconds = tick_seconds
        self.batch = batch
        self._scheduler: AsyncIOScheduler | None = None

    async def sweep(self) -> int:
        """Fire every clock due now; returns how many fired."""
        total = 0
        while True:
            async with self.uows() as uow:
                fired = await self.fire_due(uow=uow, now=self.now(), limit=self.batch)
            total += fired
            if fired < self.batch:
                return total

    async def _tick(self) -> None:
        try:
            await self.sweep()
        except Exception:  # the next tick tries again; a clock is marked fired only on commit
            log.exception("clock sweep failed")

    def start(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.tick_seconds,
            next_run_time=datetime.now(UTC),  # at start-up: fire what fell due while we were down
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
