"""Telling other processes that events were committed, through PostgreSQL's LISTEN/NOTIFY.

Web instances write events; workers publish or read them. A transaction that writes events also
sends a NOTIFY on `CHANNEL` (see `UnitOfWorkFactory`), which PostgreSQL delivers only if it
commits, and only then. A worker listens on one connection of its own and wakes its readers
(the outbox relay, or the database log's readers) at once, instead of finding the events at its
next poll. A notification lost while the listening connection is down costs only that wait: the
readers still poll, and the listener reconnects (`incidents.kernel.retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from incidents.kernel.retry import retrying

log = logging.getLogger(__name__)

CHANNEL = "ai_incidents_events"


class CommitListener:
    """Calls `on_commit` whenever another process commits events (PostgreSQL only)."""

    def __init__(
        self, engine: AsyncEngine, on_commit: Callable[[], None], *, retry_seconds: float = 1.0
    ) -> None:
        self.engine = engine
        self.on_commit = on_commit
        self.retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="commit-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, *_: Any) -> None:
        self.on_commit()

    async def _listen(self) -> None:
        async for attempt in retrying(
            "listening for new events",
            first=self.retry_seconds,
            most=max(self.retry_seconds, 5.0),
        ):
            with attempt:
                await self._listen_once()

    async def _listen_once(self) -> None:
        """Listen until the connection is lost; then raise, to be tried again."""
        self._lost.clear()
        conn = await self.engine.connect()
        try:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            driver.add_termination_listener(lambda *_: self._lost.set())
            await driver.add_listener(CHANNEL, self._notified)
            # Events committed while we were not listening: let the readers look now.
            self.on_commit()
            await self._lost.wait()
            raise ConnectionError("lost the database connection that listens for new events")
        finally:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never hand a listening connection back to others
                await conn.close()
