"""A notice the mail server accepted is on the audit record: one `notice.sent` entry per notice,
by the system, at the time it was marked sent, naming its recipients (never its acknowledgement
link), chained like every other entry and written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sqlmodel import col, select

from incidents.kernel.unit_of_work import UnitOfWork
from incidents.notices.model import Notice
from incidents.record import service as record
from incidents.record.model import AuditEntry
from tests.support import ack_link, cli, harm_report, settled


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite: naive


async def sent_entries_and_notices(runtime) -> tuple[list[AuditEntry], list[Notice]]:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        entries = list(
            await uow.session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == "notice.sent")
                .order_by(col(AuditEntry.seq))
            )
        )
        notices = list(await uow.session.exec(select(Notice)))
    return entries, notices


async def holds(runtime) -> bool:  # type: ignore[no-untyped-def]
    async with runtime.uows() as uow:
        return (await record.verify(uow.session)).broken is None


def assert_one_entry_per_sent_notice(
    entries: list[AuditEntry], notices: list[Notice], report_id: str
) -> None:
    assert notices and all(n.status == "sent" for n in notices)
    by_notice = {e.data["notice_id"]: e for e in entries}
    assert len(by_notice) == len(entries) == len(notices)  # one each, none twice
    for notice in notices:
        entry = by_notice[notice.id]
        assert entry.subject == report_id == notice.report_id
        assert entry.actor == "system"
        assert notice.sent_at is not None and utc(entry.at) == utc(notice.sent_at)
        assert entry.event_id is None  # a change on the record, announcing no event
        assert entry.data == {
            "notice_id": notice.id,
            "obligation_id": notice.obligation_id,
            "to": notice.recipients,
        }


async def test_each_sent_notice_is_on_the_record_naming_its_recipients(
    client, runtime, settings, smtp_server
):
    answer = await client.post("/api/v1/reports", json=harm_report())
    assert answer.status == 201
    filed = await answer.json()
    await smtp_server.wait_for(3)
    await settled(runtime)

    entries, notices = await sent_entries_and_notices(runtime)
    assert len(notices) == 3  # San José's harm rule names three people
    assert_one_entry_per_sent_notice(entries, notices, filed["id"])
    # The acknowledgement links stay in the mail, out of the record.
    links = [ack_link(m.message.get_body(("plain",)).get_content()) for m in smtp_server.messages]
    secrets = [parse_qs(link.partition("?")[2])["t"][0] for link in links]
    assert len(secrets) == 3
    assert not any(secret in str(e.data) for e in entries for secret in secrets)

    assert await holds(runtime)
    held = cli(settings, "audit", "verify")
    assert held.returncode == 0, held.stderr


async def test_a_record_retried_after_a_lost_commit_puts_each_notice_on_it_once(
    client, runtime, smtp_server
):
    """The first try to record sends is rolled back; the second commits but its answer is lost,
    so it is tried a third time, which finds them sent already and adds nothing."""
    real = runtime.delivery.uows

    class RecordsFailTwice:
        calls = 0

        async def execute(self, statement: Any) -> Any:
            return await real.execute(statement)

        @asynccontextmanager
        async def __call__(self) -> AsyncIterator[UnitOfWork]:
            self.calls += 1
            call = self.calls
            async with real() as uow:
                yield uow
                if call == 1:
                    raise OSError("connection to the database lost")  # before the commit
            if call == 2:
                raise OSError("connection lost waiting for the commit's answer")  # after it

    flaky = RecordsFailTwice()
    runtime.delivery.uows = flaky
    answer = await client.post("/api/v1/reports", json=harm_report())
    filed = await answer.json()
    await smtp_server.wait_for(3)
    await settled(runtime)

    assert flaky.calls >= 3
    entries, notices = await sent_entries_and_notices(runtime)
    assert_one_entry_per_sent_notice(entries, notices, filed["id"])
    assert len(smtp_server.messages) == 3
    assert await holds(runtime)
