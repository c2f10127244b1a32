"""Reading a mailbox over IMAP: every message in one folder is handed to a handler, then moved to
a folder for processed mail or one for quarantined mail.

The handler stores the message durably before it returns, and the move comes only after that. A
message is read with BODY.PEEK[], so it is not even marked as seen until it has been moved. When
the handler fails, or the service stops between the handler and the move, the message simply stays
in the folder and is handed over again next time; the handler files the same message once.

`MailboxReader.run` keeps reading: it waits for new mail with IDLE when the server offers it (and
polls otherwise), and reconnects, with a growing pause, when the connection or the server fails.
The password never appears in logs or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from aioimaplib import aioimaplib  # type: ignore[import-untyped]

from notifications.inbound import Handler, Verdict

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"imap": 143, "imaps": 993}
# RFC 2177: a server may log out a client idle for 30 minutes, so IDLE is renewed before that.
IDLE_LIMIT_SECONDS = 29 * 60
MAX_BACKOFF_SECONDS = 60.0
COMMAND_TIMEOUT_SECONDS = 30.0

_LITERAL = re.compile(rb"\{(\d+)\}$")


class MailboxError(Exception):
    """The IMAP server refused something: the login, a folder, a command."""


@dataclass(frozen=True)
class MailboxAddress:
    """Where the mailbox is, from `imap[s]://user:password@host:port/folder`."""

    tls: bool
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"

    @classmethod
    def parse(cls, url: str) -> MailboxAddress:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"not an imap:// or imaps:// URL: {scheme}://...")
        if not parts.hostname:
            raise ValueError(f"no host in the mailbox URL {scheme}://...")
        if parts.username is None or parts.password is None:
            raise ValueError(f"the mailbox URL for {parts.hostname} needs user:password@")
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(
            tls=scheme == "imaps",
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[scheme],
            user=unquote(parts.username),
            password=unquote(parts.password),
            folder=folder,
        )

    def __str__(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


def _quote(name: str) -> str:
    """A folder name as an IMAP quoted string (aioimaplib sends arguments as they are)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(lines: list[bytes | bytearray]) -> str:
    return " ".join(bytes(line).decode(errors="replace") for line in lines).strip()


class _Connection:
    """One logged-in IMAP session, with typed answers (aioimaplib ships no type hints)."""

    def __init__(self, address: MailboxAddress, timeout: float) -> None:
        self.address = address
        self.lost = asyncio.Event()
        self._imap: Any = aioimaplib.IMAP4(
            host=address.host,
            port=address.port,
            timeout=timeout,
            conn_lost_cb=lambda exc: self.lost.set(),
            ssl_context=ssl.create_default_context() if address.tls else None,
        )
        self._capabilities: set[str] = set()

    async def _call(
        self, command: str, *args: Any, **options: Any
    ) -> tuple[str, list[bytes | bytearray]]:
        response = await getattr(self._imap, command)(*args, **options)
        return str(response.result), list(response.lines)

    async def _ok(self, command: str, *args: Any, **options: Any) -> list[bytes | bytearray]:
        result, lines = await self._call(command, *args, **options)
        if result != "OK":
            shown = " ".join(str(a) for a in args)
            raise MailboxError(f"{command.upper()} {shown} -> {_text(lines)}")
        return lines

    async def open(self) -> None:
        await self._imap.wait_hello_from_server()
        # aioimaplib quotes the password but sends the user as it is.
        user = _quote(self.address.user)
        result, lines = await self._call("login", user, self.address.password)
        if result != "OK":
            raise MailboxError(f"the server refused the login: {_text(lines)}")
        # Asked again after login: some servers list MOVE or IDLE only to a logged-in client.
        await asyncio.wait_for(self._imap.protocol.capability(), COMMAND_TIMEOUT_SECONDS)
        self._capabilities = {str(c).upper() for c in self._imap.protocol.capabilities}

    def has(self, capability: str) -> bool:
        return capability.upper() in self._capabilities

    async def ensure_folder(self, name: str) -> None:
        lines = await self._ok("list", '""', _quote(name))
        if any(bytes(line).startswith(b"(") for line in lines):
            return
        result, lines = await self._call("create", _quote(name))
        # Another reader may have made it in between; that is fine.
        if result != "OK" and b"ALREADYEXISTS" not in b" ".join(bytes(x) for x in lines):
            raise MailboxError(f"cannot create folder {name!r}: {_text(lines)}")

    async def select(self, name: str) -> None:
        await self._ok("select", _quote(name))

    async def uids(self) -> list[str]:
        lines = await self._ok("uid_search", "ALL", charset=None)
        found: list[str] = []
        for line in lines[:-1]:  # the last one is the tagged "Search completed"
            found.extend(token for token in bytes(line).decode().split() if token.isdigit())
        return found

    async def fetch(self, uid: str) -> bytes | None:
        """The whole message with UID `uid`, without setting \\Seen; None if it is gone."""
        lines = await self._ok("uid", "FETCH", uid, "(UID BODY.PEEK[])")
        for index, line in enumerate(lines[:-1]):
            if isinstance(line, bytearray) or b"BODY[]" not in line:
                continue
            size = _LITERAL.search(line)
            if size and index + 1 < len(lines):
                body = bytes(lines[index + 1])
                if len(body) == int(size.group(1)):
                    return body
        return None

    async def move(self, uid: str, folder: str) -> None:
        if self.has("MOVE"):
            await self._ok("uid", "MOVE", uid, _quote(folder))
            return
        await self._ok("uid", "COPY", uid, _quote(folder))
        await self._ok("uid", "STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        if self.has("UIDPLUS"):
            await self._ok("uid", "EXPUNGE", uid)
        else:
            # Without UIDPLUS the only way out also expunges what others marked \Deleted here.
            await self._ok("expunge")

    async def wait_for_mail(self, stop: asyncio.Event, seconds: float) -> None:
        """IDLE until the server says new mail came, `seconds` pass, `stop` is set or the
        connection drops."""
        idle = await self._imap.idle_start(timeout=seconds)
        waits: set[asyncio.Future[Any]] = set()
        try:
            stopped = asyncio.ensure_future(stop.wait())
            lost = asyncio.ensure_future(self.lost.wait())
            waits = {stopped, lost}
            while True:
                push = asyncio.ensure_future(self._imap.wait_server_push(seconds + 30))
                waits.add(push)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if push not in done:
                    return
                waits.discard(push)
                news = push.result()  # raises TimeoutError if even the renewal never came
                if news == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    return
                if any(b"EXISTS" in bytes(line) for line in news):
                    return
                # Flags changed or a message went elsewhere: nothing to read; keep waiting.
        finally:
            for waiting in waits:
                waiting.cancel()
            if self.lost.is_set():
                idle.cancel()
            else:
                if self._imap.has_pending_idle():
                    self._imap.idle_done()
                await asyncio.wait_for(idle, COMMAND_TIMEOUT_SECONDS)

    async def logout(self) -> None:
        if self.lost.is_set():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._imap.logout(), 5)


class MailboxReader:
    """Hands each message in one IMAP folder to `handler`, then moves it by the verdict:
    "processed" to `processed_folder`, "quarantined" to `quarantine_folder` (both are created
    when missing). A message whose handler raised stays where it is, for the next round."""

    def __init__(
        self,
        url: str,
        handler: Handler,
        *,
        processed_folder: str = "Processed",
        quarantine_folder: str = "Quarantine",
        poll_seconds: float = 30,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
    ) -> None:
        self.address = MailboxAddress.parse(url)
        self.handler = handler
        self.folders: dict[Verdict, str] = {
            "processed": processed_folder,
            "quarantined": quarantine_folder,
        }
        self.poll_seconds = poll_seconds
        self.command_timeout = command_timeout
        self._connection: _Connection | None = None

    def __repr__(self) -> str:
        return f"MailboxReader({self.address})"

    async def _connected(self) -> _Connection:
        if self._connection is not None and not self._connection.lost.is_set():
            return self._connection
        await self._drop()
        connection = _Connection(self.address, self.command_timeout)
        try:
            await connection.open()
            for folder in self.folders.values():
                await connection.ensure_folder(folder)
        except BaseException:
            await connection.logout()
            raise
        self._connection = connection
        return connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.logout()

    async def run_once(self) -> int:
        """Read the folder once: hand over every message in it and move those handled.
        Returns how many were handled and moved. A failing connection or server raises (and
        the next call connects afresh); a failing handler only leaves its message in place."""
        try:
            connection = await self._connected()
            # SELECT every round: it is what makes a server show the mail that came since.
            await connection.select(self.address.folder)
            handled = 0
            for uid in await connection.uids():
                if await self._take(connection, uid):
                    handled += 1
            return handled
        except BaseException:
            await self._drop()
            raise

    async def _take(self, connection: _Connection, uid: str) -> bool:
        raw = await connection.fetch(uid)
        if raw is None:
            # Most likely expunged by another client since the search.
            log.warning("%s: message UID %s could not be fetched; left as it is", self.address, uid)
            return False
        try:
            verdict = await self.handler(raw)
        except Exception:
            log.exception(
                "%s: handling message UID %s failed; it stays in %s for the next round",
                self.address,
                uid,
                self.address.folder,
            )
            return False
        target = self.folders.get(verdict)
        if target is None:
            log.error("%s: handler gave %r for UID %s; left in place", self.address, verdict, uid)
            return False
        try:
            await connection.move(uid, target)
        except MailboxError:
            # Stored already; the next round hands it over again and the handler files it once.
            log.exception("%s: moving UID %s to %s failed", self.address, uid, target)
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Read the folder until `stop` is set: a round, then wait for mail (IDLE, or a pause of
        `poll_seconds`), and again. Failures are logged and retried with a growing pause (1 s,
        2 s, 4 s, ... up to a minute); they never end the loop."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    handled = await self.run_once()
                    # Mail that came during a round may have been announced in an answer to
                    # some other command, which IDLE would not repeat: read again until quiet.
                    while handled and not stop.is_set():
                        log.info("%s: %d message(s) handled", self.address, handled)
                        handled = await self.run_once()
                    failures = 0
                    await self._wait(stop)
                except Exception as exc:
                    failures += 1
                    pause = min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1))
                    log.error(
                        "%s: reading the mailbox failed (%s: %s); trying again in %.0f s",
                        self.address,
                        type(exc).__name__,
                        exc,
                        pause,
                    )
                    await self._drop()
                    await _sleep(stop, pause)
        finally:
            await self.close()

    async def _wait(self, stop: asyncio.Event) -> None:
        connection = self._connection
        if connection is not None and connection.has("IDLE"):
            await connection.wait_for_mail(stop, min(self.poll_seconds, IDLE_LIMIT_SECONDS))
        else:
            await _sleep(stop, self.poll_seconds)

    async def close(self) -> None:
        """Log out, if logged in."""
        await self._drop()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Pause `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
