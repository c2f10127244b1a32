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

from incidents.intake.service import MailRules
from incidents.kernel.actor import Grant
from incidents.kernel.throttle import Limit
from incidents.kernel.time import Now
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from incidents.people.signin import Timeouts
from incidents.policy import PolicySet
from incidents.reports.model import Channel
from incidents.reports.schemas import NewReport
from incidents.reports.service import Filed, Idempotency

IPNetwork = IPv4Network | IPv6Network


class FileReport(Protocol):
    def __call__(
        self, report: NewReport, channel: Channel, idempotency: Idempotency | None = None
    ) -> Awaitable[Filed]: ...


class SendMail(Protocol):
    """Send one plain-text email now (password resets); raises OSError when it cannot."""

    def __call__(self, to: str, subject: str, text: str) -> Awaitable[None]: ...


@dataclass(frozen=True)
class SingleSignOn:
    """The organisation's OpenID Connect identity provider (Entra ID, Google, any issuer)."""

    issuer: str  # e.g. https://login.microsoftonline.com/<tenant>/v2.0
    client_id: str
    client_secret: str
    # The claim that lists a person's groups or app roles ("roles" in Entra ID app roles,
    # "groups" elsewhere), and which of its values make an admin or an auditor. Policy roles
    # (CIO, CISO, …) come from the directory, never from claims: one source of truth.
    roles_claim: str
    role_map: Mapping[str, Grant]
    label: str  # the button's words, e.g. "Sign in with City of San José"


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
    timeouts: Timeouts  # how long a signed-in session lasts
    single_sign_on: SingleSignOn | None  # None: local accounts only
    send_mail: SendMail
    mail_rules: Callable[[], Awaitable[MailRules]]  # how mail that comes in is taken

    @property
    def zone(self) -> str:
        """The organisation's time zone, for forms and pages."""
        return self.policy.packs[0].timezone


DEPS = web.AppKey("deps", WebDeps)
