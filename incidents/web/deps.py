"""What the web handlers may use: a narrow, typed object the web app builds from the runtime.

Handlers reach the use cases through this, never the whole runtime, so a page cannot start a
worker or read a setting it has no business with, and a test can build one by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Protocol

from aiohttp import web

from incidents.kernel.throttle import Limit
from incidents.kernel.time import Now
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from incidents.policy import PolicySet
from incidents.reports.model import Channel
from incidents.reports.schemas import NewReport
from incidents.reports.service import Filed, Idempotency

IPNetwork = IPv4Network | IPv6Network


class FileReport(Protocol):
    def __call__(
        self, report: NewReport, channel: Channel, idempotency: Idempotency | None = None
    ) -> Awaitable[Filed]: ...


@dataclass(frozen=True)
class WebDeps:
    uows: UnitOfWorkFactory
    file_report: FileReport  # through intake's batches
    policy: PolicySet
    secret: bytes  # signs acknowledgement links
    now: Now
    max_body_bytes: int
    mail_folder: Path | None  # where outgoing mail is written when no SMTP server is set
    # Whether this process can publish to Kafka: None where it does not publish (a web-only
    # instance), and the whole check is None in the embedded mode (no broker at all).
    broker_healthy: Callable[[], bool | None] | None
    base_url: str  # the address people use, e.g. https://incidents.city.gov
    allowed_hosts: frozenset[str]  # the Host names answered; any other gets 421
    secure_cookies: bool  # behind HTTPS: cookies only over HTTPS
    rate_limits: Mapping[str, Limit]  # per client: "intake", "lookup", "ack"
    trusted_proxies: Sequence[IPNetwork]  # whose X-Forwarded-For names the client

    @property
    def zone(self) -> str:
        """The organisation's time zone, for forms and pages."""
        return self.policy.packs[0].timezone


DEPS = web.AppKey("deps", WebDeps)
