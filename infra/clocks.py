"""The clock keeper: APScheduler wakes the process every tick to fire the clocks that fell due.

Clocks are rows (incidents.model.ClockRow), not scheduler jobs: a restart loses none, and the
first sweep after a restart fires at once, marked late, every clock that fell due meanwhile.
APScheduler's memory store holds one interval job; it keeps no state worth losing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from incidents.services import fire_due_clocks
from incidents.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)


class ClockKeeper:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        now: Callable[[], datetime],
        *,
        tick_seconds: float = 1.0,
        batch: int = 500,
    ) -> None:
        self.uows = uows
        self.now = now
        self.tick_seconds = tick_seconds
        self.batch = batch
        self._scheduler: AsyncIOScheduler | None = None

    async def sweep(self) -> int:
        """Fire every clock due now; returns how many fired."""
        total = 0
        while True:
            async with self.uows() as uow:
                fired = await fire_due_clocks(uow=uow, now=self.now(), limit=self.batch)
            total += fired
            if fired < self.batch:
                return total

    async def _tick(self) -> None:
        try:
            await self.sweep()
        except (
            Exception
        ):  # the next tick tries again; a clock is never marked fired unless committed
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
