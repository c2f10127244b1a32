"""A real SMTP server for the tests (aiosmtpd), keeping what it receives, able to refuse on cue."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller

from tests.harness.kafka import free_port

Stage = Literal["rcpt", "data"]
REPLIES = {
    451: "451 4.3.0 Temporary failure, try again later",
    550: "550 5.1.1 Mailbox unavailable",
}


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]  # the envelope recipients
    message: EmailMessage

    def __getitem__(self, header: str) -> Any:
        return self.message[header]


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.fault: tuple[int, Stage] | None = None
        self.fault_times: int | None = None  # None: until healed
        self.refused = 0

    def _refusal(self, stage: Stage) -> str | None:
        with self.lock:
            if self.fault is None or self.fault[1] != stage:
                return None
            code = self.fault[0]
            self.refused += 1
            if self.fault_times is not None:
                self.fault_times -= 1
                if self.fault_times <= 0:
                    self.fault, self.fault_times = None, None
            return REPLIES.get(code, f"{code} refused")

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._refusal("rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        refusal = self._refusal("data")
        if refusal:
            return refusal
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(
                Received(
                    mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), message=message
                )
            )
        return "250 Message accepted for delivery"


class SMTPServer:
    """`host`/`port`/`url` to send to; `messages` received; `fail(...)` to refuse."""

    def __init__(self) -> None:
        self.handler = _Handler()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def refused(self) -> int:
        return self.handler.refused

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def fail(self, code: int = 451, *, at: Stage = "rcpt", times: int | None = None) -> None:
        """Answer `code` (451: try later; 550: refused for good) at RCPT or DATA, for the next
        `times` commands at that stage, or until `heal()`."""
        with self.handler.lock:
            self.handler.fault = (code, at)
            self.handler.fault_times = times

    def heal(self) -> None:
        with self.handler.lock:
            self.handler.fault, self.handler.fault_times = None, None

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()
            self.handler.refused = 0

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:  # noqa: ASYNC109
        """Wait until at least `count` messages arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} message(s) within {timeout}s, got {len(got)}"
                )
            await asyncio.sleep(0.02)
