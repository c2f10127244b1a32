"""Delivering email: to an SMTP server over reused connections, or to files for a newcomer."""

from __future__ import annotations

import asyncio
import base64
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
    The URL's password never appears in an error this mailer raises (nor, so, in the log).
    """

    def __init__(self, url: str, *, connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(
                f"INCIDENTS_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        # Hidden in every message: as given, as decoded, and as AUTH LOGIN and PLAIN send it.
        self._hidden = _forms_of(username, password, parts.password)
        try:
            port = parts.port
            timeout = float(query.get("timeout", 30))
        except ValueError:  # its text could quote part of the URL, password included
            raise ValueError(
                "INCIDENTS_SMTP_URL is not a valid SMTP URL (its port or timeout is not a number, "
                "or its password has an unencoded : / ? # or @)"
            ) from None
        self._options = {
            "hostname": parts.hostname or "localhost",
            "port": port or (465 if parts.scheme == "smtps" else 25),
            "use_tls": parts.scheme == "smtps" or query.get("tls") == "1",
            # None: upgrade when the server offers STARTTLS; starttls=0 forbids, =1 requires it
            "start_tls": {"1": True, "0": False}.get(query.get("starttls", "")),
            "username": username,
            "password": password,
            "timeout": timeout,
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
                raise self._error(
                    f"recipients refused: {exc.recipients}", permanent=all(c >= 500 for c in codes)
                ) from None
            except aiosmtplib.SMTPResponseException as exc:
                await _discard(client)
                raise self._error(f"{exc.code} {exc.message}", permanent=exc.code >= 500) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await _discard(client)
                raise self._error(f"mail server unavailable: {exc}", permanent=False) from None
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
            raise self._error(f"cannot reach the mail server: {exc}", permanent=False) from None
        return client

    def _error(self, message: str, *, permanent: bool) -> DeliveryError:
        """A DeliveryError whose text never holds the password (a server may echo anything)."""
        for secret in self._hidden:
            message = message.replace(secret, "***")
        return DeliveryError(message, permanent=permanent)

    async def close(self) -> None:
        while not self._idle.empty():
            await _discard(self._idle.get_nowait())


def _forms_of(username: str | None, password: str | None, raw: str | None) -> list[str]:
    """The password in every form a message could carry it, the longest first."""
    if not password:
        return []
    plain = f"\0{username or ''}\0{password}"
    forms = {
        password,
        raw or password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(plain.encode()).decode(),
    }
    return sorted(forms, key=len, reverse=True)


async def _discard(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
