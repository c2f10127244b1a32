"""Receiving mail inside the service over SMTP or LMTP (aiosmtpd), for a city whose mail relay
routes a mailbox's mail straight to us.

Every message, to any address, is handed to a handler as the bytes that came in; nothing is added
to it. The answer to DATA is 250 only after the handler returned, that is after the message was
stored. When the handler fails the answer is 451 (try again later), so the sending server keeps
the message and retries; a message over the size limit gets 552.

The server runs on the caller's event loop, not in a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from notifications.inbound import Handler

log = logging.getLogger(__name__)
# aiosmtpd logs every command of every session at INFO ("mail.log"): a line per step of each
# message would bury the service's own log. Its warnings and errors still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)

DEFAULT_PORTS = {"smtp": 25, "lmtp": 24}
MAX_BYTES = 25 * 1024 * 1024
TRY_LATER = "451 4.3.0 Message not stored; try again later"
STORED = "250 2.0.0 Message stored"


class _Hooks:
    """aiosmtpd's handler: takes any recipient, and stores DATA through the handler."""

    def __init__(self, handler: Handler, *, lmtp: bool) -> None:
        self.handler = handler
        self.lmtp = lmtp

    async def handle_DATA(  # noqa: N802  (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        raw = envelope.original_content or envelope.content
        try:
            await self.handler(bytes(raw))
        except Exception:
            log.exception(
                "a message from %s (MAIL FROM %r) could not be stored; answered 451",
                session.peer,
                envelope.mail_from,
            )
            status = TRY_LATER
        else:
            status = STORED
        if self.lmtp:
            # LMTP answers DATA once per recipient (RFC 2033); the message is stored once, so
            # every recipient gets the same answer.
            return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))
        return status


@dataclass
class Receiver:
    """A listening SMTP or LMTP server. `port` is the port it is bound to."""

    url: str
    port: int
    _server: asyncio.Server
    _sessions: weakref.WeakSet[SMTP]

    async def close(self) -> None:
        """Stop listening and drop the connections still open (their senders will retry what
        was not answered with 250)."""
        self._server.close()
        for session in list(self._sessions):
            transport = getattr(session, "transport", None)
            if transport is not None:
                transport.close()
        await self._server.wait_closed()


async def start_receiver(url: str, handler: Handler, *, max_bytes: int = MAX_BYTES) -> Receiver:
    """Listen at `smtp://HOST:PORT` or `lmtp://HOST:PORT` (PORT 0: any free port) on the
    running event loop, handing each message to `handler`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"not an smtp:// or lmtp:// URL: {url!r}")
    host = parts.hostname or "127.0.0.1"
    port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    lmtp = scheme == "lmtp"
    hooks = _Hooks(handler, lmtp=lmtp)
    loop = asyncio.get_running_loop()
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
    # aiosmtpd would otherwise look up the fully qualified name, which can hang on bad DNS.
    hostname = socket.gethostname()
    protocol = LMTP if lmtp else SMTP

    def session() -> SMTP:
        server = protocol(
            hooks,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            loop=loop,
        )
        sessions.add(server)
        return server

    server = await loop.create_server(session, host=host, port=port)
    bound = int(server.sockets[0].getsockname()[1])
    log.info("receiving mail at %s://%s:%d", scheme, host, bound)
    return Receiver(
        url=f"{scheme}://{host}:{bound}", port=bound, _server=server, _sessions=sessions
    )
