"""Delivering email: to an SMTP server over reused connections, or to files for a newcomer."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from email.message import Message
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from notifications.outbound.render import as_bytes


class DeliveryError(Exception):
    """The message was not accepted. `permanent` (a 5xx answer) means retrying will not help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    connections: int  # how many messages it sends at once

    async def send(self, message: Message, *, sender: str, recipients: Sequence[str]) -> None:
        """Deliver `message` from the address `sender` to the addresses `recipients` (the SMTP
        envelope; the message's own From and To are what people see)."""
        ...

    async def close(self) -> None: ...


def mailer_for(smtp_url: str | None, mail_dir: Path, *, connections: int) -> Mailer:
    if smtp_url:
        return SmtpMailer(smtp_url, connections=connections)
    return FileMailer(mail_dir)


class FileMailer:
    """Writes each message as an .eml file, for trying the service without a mail server."""

    connections = 4

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: Message, *, sender: str, recipients: Sequence[str]) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: Message) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(message["Message-ID"]).strip("<>"))
        tmp = self.folder / f".{stem}.tmp"
        tmp.write_bytes(message.as_bytes())
        os.replace(tmp, self.folder / f"{stem}.eml")  # whole or not at all

    async def close(self) -> None:
        return None


class SmtpMailer:
    """Sends over a small pool of kept-open connections; a new connection per message is slow.

    URL form: smtp://[user:password@]host[:port][?starttls=1|tls=1&timeout=30].
    """

    def __init__(self, url: str, *, connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"INCIDENTS_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._options = {
            "hostname": parts.hostname or "localhost",
            "port": parts.port or (465 if parts.scheme == "smtps" else 25),
            "use_tls": parts.scheme == "smtps" or query.get("tls") == "1",
            # None: upgrade when the server offers STARTTLS; starttls=0 forbids, =1 requires it
            "start_tls": {"1": True, "0": False}.get(query.get("starttls", "")),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "timeout": float(query.get("timeout", 30)),
        }
        self.connections = connections
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(connections)

    async def send(self, message: Message, *, sender: str, recipients: Sequence[str]) -> None:
        async with self._slots:
            client = await self._checkout()
            try:
                if sender.isascii() and all(r.isascii() for r in recipients):
                    await client.sendmail(sender, recipients, as_bytes(message))
                else:  # the library asks the server for SMTPUTF8 for such addresses
                    await client.send_message(message, sender=sender, recipients=recipients)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.put_nowait(client)  # the connection itself is fine
                codes = [r.code for r in exc.recipients]
                raise DeliveryError(
                    f"recipients refused: {exc.recipients}", permanent=all(c >= 500 for c in codes)
                ) from None
            except aiosmtplib.SMTPResponseException as exc:
                await _discard(client)
                raise DeliveryError(
                    f"{exc.code} {exc.message}", permanent=exc.code >= 500
                ) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _discard(client)
                raise DeliveryError(f"mail server unavailable: {exc}", permanent=False) from None
            self._idle.put_nowait(client)

    async def _checkout(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        client = aiosmtplib.SMTP(**self._options)  # type: ignore[arg-type]
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"cannot reach the mail server: {exc}", permanent=False) from None
        return client

    async def close(self) -> None:
        while not self._idle.empty():
            await _discard(self._idle.get_nowait())


async def _discard(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
