"""New reports, written in batches: the reports that arrive while one batch is being written go
together in the next (group commit).

Every report costs a transaction: a session, a commit, and a statement per table. Under load
most of that is the same work repeated, so reports filed at about the same moment share it:
one transaction and one statement per table for the whole batch. Nobody waits for a batch to
fill. A report that arrives when a writer is free is written at once, alone; only reports that
arrive while every writer is busy wait, and then for less than one write. Each caller is
answered only once its batch has committed, so a report acknowledged is a report kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from incidents.kernel.errors import DomainError, InvalidInput
from incidents.kernel.time import Now
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from incidents.policy import PolicySet
from incidents.reports import service
from incidents.reports.model import Channel
from incidents.reports.schemas import NewReport
from incidents.reports.service import Draft, Filed, Idempotency

log = logging.getLogger(__name__)

Waiting = tuple[Draft, "asyncio.Future[Filed]"]


class Intake:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        policy: PolicySet,
        now: Now,
        *,
        writers: int = 2,
        batch: int = 100,
    ) -> None:
        self._uows = uows
        self._policy = policy
        self._now = now
        self._writers = writers  # batches in flight at once: one commits while the next writes
        self._batch = batch
        self._waiting: list[Waiting] = []
        self._running: set[asyncio.Task[None]] = set()

    async def file(
        self, report: NewReport, channel: Channel, idempotency: Idempotency | None = None
    ) -> Filed:
        """Record the report with its obligations and announce it; return once committed.

        With `idempotency`, a report already filed with the same key raises DuplicateKey.
        """
        future: asyncio.Future[Filed] = asyncio.get_running_loop().create_future()
        self._waiting.append((Draft(report, channel, idempotency), future))
        # Count live writers only: a writer that has just finished stays in `_running` until its
        # done callback runs, and a filer woken by that writer's last batch runs before it.
        if sum(not task.done() for task in self._running) < self._writers:
            task = asyncio.create_task(self._write(), name="intake")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        # The writer, not the caller, owns the write: a caller who goes away (a closed
        # connection) leaves its batch to finish.
        return await future

    async def close(self) -> None:
        """Finish the batches being written (before the database goes away)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
            try:
                filed = await self._file([draft for draft, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], error=exc)
                    continue
                # One report's fault must not refuse the others: write each alone.
                if not isinstance(exc, InvalidInput):
                    log.warning(
                        "%d reports failed together (%s); writing each alone", len(batch), exc
                    )
                for draft, future in batch:
                    try:
                        (one,) = await self._file([draft])
                    except Exception as alone:
                        _settle(future, error=alone)
                    else:
                        _settle(future, result=one)
                continue
            for (_, future), one in zip(batch, filed, strict=True):
                _settle(future, result=one)

    async def _file(self, drafts: Sequence[Draft]) -> list[Filed]:
        try:
            async with self._uows() as uow:
                return await service.file_reports(
                    drafts, uow=uow, policy=self._policy, now=self._now()
                )
        except IntegrityError:
            # Alone (a batch that fails is written a report at a time), a keyed report that
            # breaks a unique index met its key, filed a moment ago by a retry.
            if len(drafts) == 1 and drafts[0].idempotency is not None:
                raise DuplicateKey(drafts[0].idempotency.key) from None
            raise


class DuplicateKey(DomainError):
    """A report with this Idempotency-Key was filed meanwhile (a retry that raced the first)."""


def _settle(
    future: asyncio.Future[Filed],
    *,
    result: Filed | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the caller went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
