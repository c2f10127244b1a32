"""The two ways mail comes in, against real servers: a mailbox in Dovecot read over IMAP
(tests/harness/imap.py), and the service's own SMTP and LMTP receiver, sent to with aiosmtplib
and Python's smtplib. The handler here stands for the real one: it files a message once per
Message-ID, however often it is handed over, and can be told to fail."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time
from collections.abc import AsyncIterator
from email import message_from_bytes

import aiosmtplib
import pytest

from notifications.inbound import imap as imap_module
from notifications.inbound.imap import MailboxAddress, MailboxReader, Verdict
from notifications.inbound.smtp import Receiver, start_receiver
from tests.harness.imap import IMAPServer


def mail(n: int, *, body: str = "A chatbot told a resident to skip a court date.") -> bytes:
    return (
        f"From: Resident {n} <resident{n}@example.org>\r\n"
        "To: ai-incidents@city.example\r\n"
        f"Subject: Report {n}\r\n"
        f"Message-ID: <report-{n}-{time.monotonic_ns()}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def message_id(raw: bytes) -> str:
    return str(message_from_bytes(raw)["Message-ID"])


class Filing:
    """An idempotent handler: `filed` holds each Message-ID once; `calls` every hand-over."""

    def __init__(self, verdict: Verdict = "processed") -> None:
        self.verdict: Verdict = verdict
        self.filed: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.fail_after_filing = 0  # this many next calls file the message, then raise
        self.fail_before_filing = 0  # this many next calls raise at once ("database down")
        self.arrived = asyncio.Event()

    async def __call__(self, raw: bytes) -> Verdict:
        key = message_id(raw)
        self.calls.append(key)
        if self.fail_before_filing:
            self.fail_before_filing -= 1
            raise ConnectionError("database down")
        self.filed.setdefault(key, raw)
        self.arrived.set()
        if self.fail_after_filing:
            self.fail_after_filing -= 1
            raise RuntimeError("crashed after storing, before answering")
        return self.verdict


@pytest.fixture
def mailbox(imap_server: IMAPServer) -> IMAPServer:
    imap_server.clear()
    return imap_server


# --- IMAP -----------------------------------------------------------------------------------


def test_mailbox_url_is_parsed_and_the_password_never_shown() -> None:
    address = MailboxAddress.parse(
        "imaps://city%40example.org:p%40ss%2Fw%20rd@mail.example/Reports"
    )
    assert (address.tls, address.host, address.port) == (True, "mail.example", 993)
    assert (address.user, address.password, address.folder) == (
        "city@example.org",
        "p@ss/w rd",
        "Reports",
    )
    plain = MailboxAddress.parse("imap://u:p@mail.example")
    assert (plain.tls, plain.port, plain.folder) == (False, 143, "INBOX")

    async def handler(raw: bytes) -> Verdict:
        return "processed"

    reader = MailboxReader("imap://u:hunter2@mail.example:1143/INBOX", handler)
    assert repr(reader) == "MailboxReader(imap://u@mail.example:1143/INBOX)"
    assert "hunter2" not in repr(reader.address)
    with pytest.raises(ValueError):
        MailboxAddress.parse("pop3://u:p@mail.example")


async def test_run_once_hands_over_each_message_then_moves_it_to_processed(
    mailbox: IMAPServer,
) -> None:
    sent = [mail(1), mail(2)]
    for raw in sent:
        mailbox.deliver(raw)
    filing = Filing()
    reader = MailboxReader(mailbox.url, filing)
    try:
        assert await reader.run_once() == 2
        assert await reader.run_once() == 0  # nothing left to read
    finally:
        await reader.close()

    assert sorted(filing.filed.values()) == sorted(sent)
    assert mailbox.folder("INBOX") == []
    assert sorted(mailbox.folder("Processed")) == sorted(sent)
    assert mailbox.folder("Quarantine") == []


async def test_a_quarantined_message_goes_to_quarantine(mailbox: IMAPServer) -> None:
    raw = mail(3)
    mailbox.deliver(raw)
    reader = MailboxReader(mailbox.url, Filing(verdict="quarantined"))
    try:
        assert await reader.run_once() == 1
    finally:
        await reader.close()
    assert mailbox.folder("INBOX") == []
    assert mailbox.folder("Quarantine") == [raw]
    assert mailbox.folder("Processed") == []


async def test_without_move_it_copies_flags_and_expunges(
    mailbox: IMAPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_has = imap_module._Connection.has
    monkeypatch.setattr(
        imap_module._Connection, "has", lambda self, cap: cap != "MOVE" and real_has(self, cap)
    )
    first, second = mail(4), mail(5)
    mailbox.deliver(first)
    mailbox.deliver(second)
    reader = MailboxReader(mailbox.url, Filing(), processed_folder="Done Reports")
    try:
        assert await reader.run_once() == 2
    finally:
        await reader.close()
    assert mailbox.folder("INBOX") == []
    assert sorted(mailbox.folder("Done Reports")) == sorted([first, second])


async def test_a_crash_between_storing_and_moving_files_the_message_once(
    mailbox: IMAPServer, caplog: pytest.LogCaptureFixture
) -> None:
    crashing, healthy = mail(6), mail(7)
    mailbox.deliver(crashing)
    mailbox.deliver(healthy)
    filing = Filing()
    filing.fail_after_filing = 1  # stored, then the process "dies" before the move

    first = MailboxReader(mailbox.url, filing)
    try:
        assert await first.run_once() == 1  # the other message goes on
    finally:
        await first.close()
    assert mailbox.folder("INBOX") == [crashing]
    assert "stays in INBOX" in caplog.text

    second = MailboxReader(mailbox.url, filing)  # a fresh reader, as after a restart
    try:
        assert await second.run_once() == 1
    finally:
        await second.close()

    assert mailbox.folder("INBOX") == []
    assert sorted(mailbox.folder("Processed")) == sorted([crashing, healthy])
    assert filing.calls.count(message_id(crashing)) == 2  # handed over twice...
    assert filing.filed[message_id(crashing)] == crashing  # ...filed once
    assert len(filing.filed) == 2


async def test_a_connection_lost_during_the_move_leaves_the_message_for_next_time(
    mailbox: IMAPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = mail(8)
    mailbox.deliver(raw)
    real_move = imap_module._Connection.move
    failures = [ConnectionResetError("connection reset during MOVE")]

    async def move_failing_once(self: imap_module._Connection, uid: str, folder: str) -> None:
        if failures:
            raise failures.pop()
        await real_move(self, uid, folder)

    monkeypatch.setattr(imap_module._Connection, "move", move_failing_once)
    filing = Filing()
    reader = MailboxReader(mailbox.url, filing)
    try:
        with pytest.raises(ConnectionResetError):
            await reader.run_once()
        assert mailbox.folder("INBOX") == [raw]
        assert await reader.run_once() == 1  # connects afresh
    finally:
        await reader.close()
    assert mailbox.folder("Processed") == [raw]
    assert filing.calls == [message_id(raw)] * 2
    assert list(filing.filed.values()) == [raw]


async def test_a_failing_handler_leaves_the_message_and_it_is_handled_later(
    mailbox: IMAPServer,
) -> None:
    raw = mail(9)
    mailbox.deliver(raw)
    filing = Filing()
    filing.fail_before_filing = 1
    reader = MailboxReader(mailbox.url, filing)
    try:
        assert await reader.run_once() == 0
        assert mailbox.folder("INBOX") == [raw]
        assert filing.filed == {}
        assert await reader.run_once() == 1
    finally:
        await reader.close()
    assert mailbox.folder("Processed") == [raw]


@pytest.fixture
async def stop() -> AsyncIterator[asyncio.Event]:
    event = asyncio.Event()
    yield event
    event.set()


async def test_run_waits_with_idle_and_picks_up_new_mail_at_once(
    mailbox: IMAPServer, stop: asyncio.Event
) -> None:
    filing = Filing()
    # A minute between polls: only IDLE can bring the second message in within seconds.
    reader = MailboxReader(mailbox.url, filing, poll_seconds=60)
    mailbox.deliver(mail(10))
    task = asyncio.create_task(reader.run(stop))
    try:
        await asyncio.wait_for(filing.arrived.wait(), 5)
        await asyncio.sleep(0.3)  # into IDLE
        filing.arrived.clear()
        later = mail(11)
        started = time.monotonic()
        mailbox.deliver(later)
        await asyncio.wait_for(filing.arrived.wait(), 5)
        assert message_id(later) in filing.filed
        assert time.monotonic() - started < 5
        for _ in range(50):  # the move follows the handler
            if mailbox.folder("INBOX") == []:
                break
            await asyncio.sleep(0.05)
        assert len(mailbox.folder("Processed")) == 2
    finally:
        stop.set()
        stopping = time.monotonic()
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - stopping < 2  # leaves IDLE as soon as told


async def test_run_reconnects_when_the_connection_drops_while_idle(
    mailbox: IMAPServer, stop: asyncio.Event
) -> None:
    filing = Filing()
    reader = MailboxReader(mailbox.url, filing, poll_seconds=60)
    task = asyncio.create_task(reader.run(stop))
    try:
        for _ in range(100):
            connection = reader._connection
            if connection is not None and connection._imap.has_pending_idle():
                break
            await asyncio.sleep(0.02)
        assert connection is not None
        connection._imap.protocol.transport.abort()  # as a server restart or a NAT timeout would
        await asyncio.sleep(0.2)
        raw = mail(12)
        mailbox.deliver(raw)
        await asyncio.wait_for(filing.arrived.wait(), 5)
        assert reader._connection is not connection
        assert list(filing.filed.values()) == [raw]
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_a_wrong_password_is_logged_clearly_and_run_keeps_trying(
    mailbox: IMAPServer, stop: asyncio.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong = "not-the-password"
    reader = MailboxReader(mailbox.url_with(password=wrong), Filing(), poll_seconds=0.1)
    task = asyncio.create_task(reader.run(stop))
    try:
        for _ in range(100):
            if "refused the login" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "refused the login" in caplog.text
        assert f"imap://{mailbox.user}@{mailbox.host}:{mailbox.port}/INBOX" in caplog.text
        assert not task.done()  # it keeps trying instead of crashing
    finally:
        stop.set()
        await asyncio.wait_for(task, 3)
    assert wrong not in caplog.text
    assert mailbox.password not in caplog.text


# --- SMTP and LMTP ---------------------------------------------------------------------------


@pytest.fixture
async def filing() -> Filing:
    return Filing()


@pytest.fixture
async def smtp_receiver(filing: Filing) -> AsyncIterator[Receiver]:
    receiver = await start_receiver("smtp://127.0.0.1:0", filing, max_bytes=64 * 1024)
    try:
        yield receiver
    finally:
        await receiver.close()


async def test_smtp_answers_250_after_the_message_is_stored_as_sent(
    smtp_receiver: Receiver, filing: Filing
) -> None:
    # A line starting with a dot is escaped on the wire and must come back as sent.
    raw = mail(20, body=".a line that starts with a dot\r\n..and two")
    assert smtp_receiver.port > 0
    errors, reply = await aiosmtplib.send(
        raw,
        sender="relay@city.example",
        recipients=["ai-incidents@city.example", "anyone@elsewhere.example"],
        hostname="127.0.0.1",
        port=smtp_receiver.port,
        timeout=10,
    )
    assert errors == {}  # every recipient taken
    assert reply == "2.0.0 Message stored"  # the text of the 250 answer to DATA
    assert list(filing.filed.values()) == [raw]

    # The code itself, command by command.
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_receiver.port) as client:
        await client.mail("relay@city.example")
        await client.rcpt("whoever@example.net")
        answer = await client.data(mail(24))
    assert answer.code == 250
    assert len(filing.filed) == 2


async def test_smtp_answers_451_when_the_message_cannot_be_stored(
    smtp_receiver: Receiver, filing: Filing, caplog: pytest.LogCaptureFixture
) -> None:
    raw = mail(21)
    filing.fail_before_filing = 1
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await aiosmtplib.send(
            raw,
            sender="relay@city.example",
            recipients=["ai-incidents@city.example"],
            hostname="127.0.0.1",
            port=smtp_receiver.port,
            timeout=10,
        )
    assert refused.value.code == 451
    assert filing.filed == {}
    assert "could not be stored" in caplog.text
    # The sender still has the message and tries again later; then it is stored, once.
    await aiosmtplib.send(
        raw,
        sender="relay@city.example",
        recipients=["ai-incidents@city.example"],
        hostname="127.0.0.1",
        port=smtp_receiver.port,
        timeout=10,
    )
    assert list(filing.filed.values()) == [raw]


async def test_smtp_refuses_a_message_over_the_size_limit_with_552(
    smtp_receiver: Receiver, filing: Filing
) -> None:
    raw = mail(22, body="x" * 100 + "\r\n" + ("y" * 998 + "\r\n") * 80)
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await aiosmtplib.send(
            raw,
            sender="relay@city.example",
            recipients=["ai-incidents@city.example"],
            hostname="127.0.0.1",
            port=smtp_receiver.port,
            timeout=10,
        )
    assert refused.value.code == 552
    assert filing.calls == []


async def test_lmtp_accepts_a_message_with_one_answer_per_recipient(filing: Filing) -> None:
    receiver = await start_receiver("lmtp://127.0.0.1:0", filing)
    raw = mail(23)
    recipients = ["ai-incidents@city.example", "clerk@city.example"]

    def deliver() -> tuple[dict[str, tuple[int, bytes]], tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", receiver.port, timeout=10) as client:
            refused = client.sendmail("relay@city.example", recipients, raw)
            # RFC 2033: after DATA, one reply per recipient; smtplib reads only the first, so
            # the second must be waiting, and also say 250.
            second = client.getreply()
            return refused, second

    try:
        refused, second = await asyncio.to_thread(deliver)
    finally:
        await receiver.close()
    assert refused == {}
    assert second[0] == 250
    assert list(filing.filed.values()) == [raw]
