"""Delivery: sends the notices on record, retrying while the mail server is away.

A notice is claimed with a lease (its next attempt moved ahead) before sending, so several
instances never send the same notice at once, and a notice whose sender died is retried when
the lease runs out. A crash between the server's acceptance and our record of it is the only
window for a duplicate, and a bounded one (twice the mail connections: see `_send`); the
notice's stable Message-ID lets mail systems drop it.

A notice marked sent is put on the audit record (`notice.sent`, naming its recipients) in the
same transaction; a refused one is put there by its NoticeFailed event.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from email.message import Message
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Row, update
from sqlmodel import col, select

from incidents.kernel.retry import retrying
from incidents.kernel.time import Now, wait_for_wake
from incidents.kernel.unit_of_work import SYSTEM, UnitOfWorkFactory
from incidents.notices.events import NoticeFailed
from incidents.notices.model import Notice, NoticeStatus
from notifications.outbound.mailer import DeliveryError, Mailer
from notifications.outbound.render import build_message

log = logging.getLogger(__name__)

# The table rather than the mapped class for the hot statements: plain rows, which are only
# read here, cost far less than ORM objects.
_NOTICES = Notice.__table__  # type: ignore[attr-defined]

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)
MAX_RECORD_RETRY_SECONDS = 5.0  # well inside the lease: the record lands before a resend could


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s … up to five minutes between tries."""
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class Delivery:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        mailer: Mailer,
        now: Now,
        *,
        sender: str,
        window: int = 64,
        poll_seconds: float = 1.0,
        lease: timedelta = LEASE,
    ) -> None:
        """`window`: notices this process keeps claimed and in flight at most. Claiming more as
        sends finish, rather than a batch at a time, keeps every mail connection busy."""
        self.uows = uows
        self.mailer = mailer
        self.now = now
        self.sender = sender
        self._envelope_from = parseaddr(sender)[1] or sender
        self.window = window
        self.poll_seconds = poll_seconds
        self.lease = lease
        self._wake = asyncio.Event()  # new notices were stored
        self._room = asyncio.Event()  # a send finished: the window has room
        self._sending: set[asyncio.Task[None]] = set()
        self._connections = asyncio.Semaphore(mailer.connections)
        self._sent: list[tuple[Row[Any], asyncio.Future[None]]] = []  # accepted, not yet recorded
        self._unrecorded = 0  # accepted by the server, record not yet committed
        self._recorded = asyncio.Condition()
        self._recorder: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """Notices claimed by this process and not yet recorded as sent or failed."""
        return len(self._sending)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                self._room.clear()
                room = self.window - len(self._sending)
                try:
                    claimed = await self._claim(room)
                except Exception as exc:  # the database is away: the notices wait in it
                    log.warning("delivery: cannot claim notices, retrying: %s", exc)
                    claimed = []
                for notice in claimed:
                    task = asyncio.create_task(self._send(notice))
                    self._sending.add(task)
                    task.add_done_callback(self._done)
                if claimed and len(claimed) == room:
                    await self._room.wait()  # more are probably due: claim as soon as there is room
                else:
                    await wait_for_wake(self._wake, self.poll_seconds)
        finally:
            for task in self._sending:
                task.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Most likely the database is away; the notice's claim runs out and it is retried.
            log.error("delivery: a send could not be finished: %s", task.exception())
        if len(self._sending) <= self.window // 2:
            self._room.set()

    async def release_claims(self) -> int:
        """Make every pending notice due now, claims included; returns how many.

        Only for a database one process owns (the embedded SQLite mode): a claim left by that
        process before a crash has no other owner, and waiting out its lease would only delay
        the notice. With several instances, a dead one's claims expire after LEASE instead.
        """
        now = self.now()
        async with self.uows() as uow:
            pending = list(
                await uow.session.exec(
                    select(Notice).where(
                        Notice.status == NoticeStatus.PENDING, col(Notice.next_attempt_at) > now
                    )
                )
            )
            for notice in pending:
                notice.next_attempt_at = now
                uow.session.add(notice)
        return len(pending)

    async def _claim(self, limit: int) -> list[Row[Any]]:
        """Take up to `limit` due notices, moving their next attempt past the lease, in one
        statement."""
        if limit <= 0:
            return []
        now = self.now()
        due = (
            select(Notice.id)
            .where(Notice.status == NoticeStatus.PENDING, col(Notice.next_attempt_at) <= now)
            .order_by(col(Notice.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(_NOTICES)
            .where(_NOTICES.c.id.in_(due.scalar_subquery()))
            .values(attempts=_NOTICES.c.attempts + 1, next_attempt_at=now + self.lease)
            .returning(*_NOTICES.c)
        )
        return await self.uows.execute(claim)

    async def _send(self, notice: Row[Any]) -> None:
        # A message is built only when a connection is free to take it: building the whole
        # window at once would hold this process's event loop, and every mail connection
        # with it, for tens of milliseconds.
        async with self._connections:
            # Bounds what a crash can double: at most `connections` notices accepted and not
            # yet recorded, plus one being sent on each connection.
            async with self._recorded:
                await self._recorded.wait_for(lambda: self._unrecorded < self.mailer.connections)
            failure: DeliveryError | None = None
            try:
                await self.mailer.send(
                    self._message(notice),
                    sender=self._envelope_from,
                    recipients=notice.recipients,
                )
            except DeliveryError as exc:
                failure = exc
        if failure is not None:
            await self._failed(notice, failure)
        else:
            await self._record_sent(notice)

    def _message(self, notice: Row[Any]) -> Message:
        return build_message(
            sender=self.sender,
            recipients=notice.recipients,
            subject=notice.subject,
            text=notice.text_body,
            html=notice.html_body,
            message_id=notice.message_id,
            thread_id=(
                f"<report-{notice.report_id or notice.obligation_id or notice.id}"
                f"@{notice.message_id.rsplit('@', 1)[-1]}"
            ),
            headers=notice.headers,
        )

    async def _record_sent(self, notice: Row[Any]) -> None:
        """Record a sent notice as soon as possible (group commit).

        Each send is recorded right after the server accepted it, so a crash can double only
        the notices accepted in the last moment (at most twice the connections: see `_send`).
        Sends that complete while a record is being written go together into the next one: a
        transaction per write rather than per notice, and no notice held back for others.
        """
        recorded = asyncio.get_running_loop().create_future()
        self._sent.append((notice, recorded))
        self._unrecorded += 1
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._write_sent())
        await recorded

    async def _write_sent(self) -> None:
        while self._sent:
            batch, self._sent = self._sent, []
            await self._record_until_done([n for n, _ in batch], sent_at=self.now())
            for _, recorded in batch:
                if not recorded.done():
                    recorded.set_result(None)
            self._unrecorded -= len(batch)
            async with self._recorded:
                self._recorded.notify_all()

    async def _record_until_done(self, notices: list[Row[Any]], *, sent_at: datetime) -> None:
        """Mark these notices sent and put each on the record, in one transaction, trying again
        while the database is away.

        Only the notices still pending change and get an entry: after a retry whose first try
        did commit, or a notice another process already recorded, nothing is written twice.

        Given up, they would be sent again once their claim ran out. Meanwhile this process
        sends nothing more (`_send` waits while too many are unrecorded), so an outage costs a
        pause, not duplicates; only a crash leaves them to be sent again.
        """
        mark = (
            update(_NOTICES)
            .where(
                _NOTICES.c.id.in_([n.id for n in notices]),
                _NOTICES.c.status == NoticeStatus.PENDING,
            )
            .values(status=NoticeStatus.SENT, sent_at=sent_at, last_error=None)
            .returning(_NOTICES.c.id)
        )
        async for attempt in retrying(
            f"recording {len(notices)} sent notices", first=0.1, most=MAX_RECORD_RETRY_SECONDS
        ):
            with attempt:
                async with self.uows() as uow:
                    changed = set((await uow.session.exec(mark)).scalars())
                    for notice in notices:  # in the order the server accepted them
                        if notice.id in changed:
                            uow.record(
                                "notice.sent",
                                subject=notice.report_id or notice.obligation_id or notice.id,
                                actor=SYSTEM,
                                at=sent_at,
                                # Who was told, not what: the body holds the acknowledgement link.
                                data={
                                    "notice_id": notice.id,
                                    "obligation_id": notice.obligation_id,
                                    "to": list(notice.recipients),
                                },
                            )

    async def _failed(self, notice: Row[Any], exc: DeliveryError) -> None:
        now = self.now()
        async with self.uows() as uow:
            row = await uow.session.get(Notice, notice.id)
            assert row is not None
            row.last_error = str(exc)
            if exc.permanent:
                row.status = NoticeStatus.FAILED
                if row.obligation_id is not None:  # an answer to a writer escalates nothing
                    uow.emit(
                        NoticeFailed(
                            notice_id=row.id, obligation_id=row.obligation_id, error=str(exc)
                        ),
                        subject=row.report_id or row.obligation_id,
                        time=now,
                    )
                log.error("notice %s refused for good: %s", row.id, exc)
            else:
                row.next_attempt_at = now + backoff(row.attempts)
                log.warning("notice %s not sent (try %d): %s", row.id, row.attempts, exc)
            uow.session.add(row)
