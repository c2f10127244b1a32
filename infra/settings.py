"""The one settings object. Every value comes from an `INCIDENTS_*` environment variable."""

from __future__ import annotations

import json
import re
import secrets
from datetime import date
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, overload
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from incidents.kernel.throttle import Limit

IPNetwork = IPv4Network | IPv6Network

# A query parameter that carries a password (asyncpg and libpq take `password=`).
_PASSWORD_PARAM = re.compile(r"(?i)([?&](?:password|passwd|pwd|pass)=)[^&#]*")


def without_password(url: str) -> str:
    """`url` safe to show: its password, if any, replaced by ***.

    Works on the raw text, not on a parsed URL, so that a URL with an unencoded `/`, `#`, `?`
    or `@` in its password is never shown whole: everything between the user's `:` and the last
    `@` is hidden (at worst, a little more than the password).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:  # not a URL; hide whatever could be credentials
        scheme, rest = "", url
    userinfo, at, location = rest.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:***"
        rest = f"{userinfo}@{location}"
    rest = _PASSWORD_PARAM.sub(r"\1***", rest)
    return f"{scheme}{sep}{rest}"


class SecretUrl(SecretStr):
    """A URL that may hold a password: `repr` hides it whole, as for any `SecretStr`; `str`
    (and so an f-string) gives the URL with its password replaced by ***. The raw value, to
    connect with, is `get_secret_value()`."""

    def __str__(self) -> str:
        return without_password(self.get_secret_value())


class Settings(BaseSettings):
    # hide_input_in_errors: a value refused by validation (a URL with a password, the secret
    # key) is never repeated in the error.
    model_config = SettingsConfigDict(
        env_prefix="INCIDENTS_", extra="ignore", hide_input_in_errors=True
    )

    home: Path = Field(
        default=Path("incidents-data"),
        description="data folder: the embedded database, outgoing mail when no SMTP server is set",
    )
    database_url: SecretUrl | None = Field(
        default=None,
        description="default: an SQLite file in INCIDENTS_HOME; "
        "shown only with its password hidden",
    )
    policy: Annotated[list[str], NoDecode] = Field(
        default=["san-jose"], description="comma-separated policy pack names or pack file paths"
    )
    directory: Path | None = Field(
        default=None, description="the people behind each role; default: the demo directory"
    )
    smtp_url: SecretUrl | None = Field(
        default=None,
        description="e.g. smtp://user:pass@mail.example:587?starttls=1; unset: mail goes to files; "
        "shown only with its password hidden",
    )
    smtp_connections: int = Field(
        # Sending is bound by round trips, not by CPU: on a busy machine a message takes ~20 ms
        # on its connection, so 16 keep several hundred notices a second going.
        default=16,
        ge=1,
        description="connections each worker keeps open to the mail server; "
        "lower it if your relay limits them",
    )
    mail_from: str = "AI Incidents <ai-incidents@city.example>"
    base_url: str | None = Field(default=None, description="address used in links in emails")
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs acknowledgement links; default: generated in INCIDENTS_HOME "
        "(required by `incidents web` and `worker` on PostgreSQL: the same on every instance)",
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="host:port of Kafka; unset: events use the database log"
    )
    kafka_topic: str = Field(
        default="ai-incidents.events",
        description="the events topic (dead letters: <topic>.<consumer>.dlt)",
    )
    kafka_consumer_options: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        repr=False,  # may hold a SASL password
        description='more aiokafka consumer settings, JSON, e.g. {"session_timeout_ms": 10000}',
    )
    kafka_intake_topic: str = Field(
        default="ai-incidents.intake",
        description="with Kafka: the topic of reports other systems publish (CloudEvents, type "
        "…report.submitted.v1); refused ones go to <topic>.dlt",
    )
    mail_intake: SecretStr | None = Field(
        default=None,
        description="where reports by email come in, comma-separated: imap://user:pass@host/INBOX "
        "or imaps://… (a mailbox the service reads), smtp://127.0.0.1:2525 or lmtp://… (a "
        "receiver inside the service); run it on one worker only",
    )
    mail_intake_domains: str = Field(
        default="",
        description="sender domains allowed to report by email, comma-separated; empty: any",
    )
    mail_intake_per_hour: int = Field(
        default=20, ge=1, description="messages one sender may send in an hour before quarantine"
    )
    delivery_lease_seconds: float = Field(
        default=60.0,
        description="how long a notice being sent is held before another instance may retry it; "
        "keep it above the SMTP timeout",
    )
    holidays: Annotated[list[date], NoDecode] = Field(
        default_factory=list, description="extra non-business days, comma-separated ISO dates"
    )
    interpretations: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description='override a pack\'s reading of a word, JSON: {"san-jose.promptly": "PT4H"}',
    )
    max_body_bytes: int = Field(default=64 * 1024, description="largest accepted request body")
    clock_tick_seconds: float = Field(default=1.0, description="how often due clocks are swept")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="more host names the web answers to, comma-separated, besides the base "
        "URL's and the loopback names (e.g. the name a load balancer's health check uses)",
    )
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")],
        description="proxies whose X-Forwarded-For names the client, comma-separated "
        "addresses or networks (e.g. 10.0.0.0/8); rate limits count per client",
    )
    rate_limits: Annotated[dict[str, Limit], NoDecode] = Field(
        default_factory=dict,
        description="per-client limits, e.g. intake=300/minute,lookup=60/minute,ack=60/minute,"
        "signin=20/minute "
        "(0 turns one off); unset ones keep their defaults",
    )

    oidc_issuer: str | None = Field(
        default=None,
        description="single sign-on: the OpenID Connect issuer, e.g. "
        "https://login.microsoftonline.com/<tenant>/v2.0 or https://accounts.google.com "
        "(its /.well-known/openid-configuration is read); unset: local accounts only",
    )
    oidc_client_id: str | None = Field(default=None, description="single sign-on: client id")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="single sign-on: client secret"
    )
    oidc_roles_claim: str = Field(
        default="roles",
        description="the ID token claim that lists a person's app roles or groups "
        '("roles" for Entra ID app roles, "groups" for groups)',
    )
    oidc_role_map: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="which claim values grant admin or auditor, JSON, e.g. "
        '{"AIIncidents.Admin": "admin", "Records Auditors": "auditor"}; policy roles '
        "(CIO, CISO, …) come from INCIDENTS_DIRECTORY",
    )
    oidc_label: str = Field(
        default="Sign in with your organisation's account",
        description="the single sign-on button's words",
    )
    session_idle_minutes: float = Field(
        default=30, gt=0, description="a signed-in session ends after this long without use"
    )
    session_hours: float = Field(
        default=12, gt=0, description="a signed-in session ends this long after sign-in"
    )

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError(
                "INCIDENTS_OIDC_ISSUER is set: set INCIDENTS_OIDC_CLIENT_ID and "
                "INCIDENTS_OIDC_CLIENT_SECRET too (from the app registration at your provider)"
            )
        return self

    @field_validator("oidc_role_map")
    @classmethod
    def _role_map(cls, v: dict[str, str]) -> dict[str, str]:
        for claim, role in v.items():
            if role not in ("admin", "auditor"):
                raise ValueError(
                    f"{claim!r} maps to {role!r}: map claim values to admin or auditor"
                )
        return v

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _limits(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        limits: dict[str, Limit] = {}
        for item in filter(None, (p.strip() for p in v.split(","))):
            purpose, _, rate = item.partition("=")
            if purpose.strip() not in ("intake", "lookup", "ack", "signin"):
                raise ValueError(
                    f"{item!r}: name intake, lookup, ack or signin, e.g. lookup=60/minute"
                )
            limits[purpose.strip()] = Limit.parse(rate)
        return limits

    @field_validator("database_url", "smtp_url", "secret_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        # `INCIDENTS_SECRET_KEY=` (an .env line left empty) is no key, not an empty one.
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: SecretUrl | None) -> SecretUrl | None:
        if v is not None:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(v.get_secret_value())
            except ArgumentError:
                raise ValueError(
                    "not a database URL; e.g. postgresql+asyncpg://user:password@host/incidents "
                    "(percent-encode any of : / ? # @ in the password)"
                ) from None
        return v

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, v: SecretUrl | None) -> SecretUrl | None:
        if v is not None:
            parts = urlsplit(v.get_secret_value())
            if parts.scheme not in ("smtp", "smtps"):
                raise ValueError("must start with smtp:// or smtps://")
            try:
                parts.port  # noqa: B018  (raises on a port that is not a number)
            except ValueError:
                raise ValueError(
                    "not an SMTP URL; e.g. smtp://user:password@mail.example:587?starttls=1 "
                    "(percent-encode any of : / ? # @ in the password)"
                ) from None
        return v

    @field_validator("policy", "holidays", "allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("interpretations", "kafka_consumer_options", "oidc_role_map", mode="before")
    @classmethod
    def _json(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    def resolved_database_url(self) -> str:
        """The database to connect to (with its password: never show it; see `safe_url`)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.home / 'incidents.db').resolve()}"

    @property
    def shared_database(self) -> bool:
        """Whether several processes may share the database: any but SQLite (PostgreSQL)."""
        return not self.resolved_database_url().startswith("sqlite")

    @overload
    def safe_url(self, which: Literal["database"]) -> str: ...
    @overload
    def safe_url(self, which: Literal["smtp"]) -> str | None: ...
    def safe_url(self, which: Literal["database", "smtp"]) -> str | None:
        """The database's or the mail server's URL, safe to print or log: its password replaced
        by ***, e.g. smtp://user:***@mail.example:587. The only way a URL setting is shown.
        The database's is the one in use (the SQLite default when unset); the mail server's is
        None when unset."""
        if which == "database":
            return without_password(self.resolved_database_url())
        return None if self.smtp_url is None else without_password(self.smtp_url.get_secret_value())

    def recordable(self) -> dict[str, str]:
        """Every setting as the record keeps it: URLs with their passwords hidden, and of a
        secret only whether it is set (the record is exported to the public)."""
        shown: dict[str, str] = {}
        for name, value in self:
            if isinstance(value, SecretUrl):
                shown[name] = str(value)
            elif isinstance(value, SecretStr) or name == "kafka_consumer_options":
                shown[name] = "set" if value else "unset"
            elif isinstance(value, BaseModel | dict | list):
                shown[name] = json.dumps(value, default=str, sort_keys=True)
            else:
                shown[name] = "unset" if value is None else str(value)
        return shown

    def mail_sources(self) -> list[str]:
        """The mail intake's URLs, each checked: a scheme the service reads, and a port."""
        if self.mail_intake is None:
            return []
        urls = [u.strip() for u in self.mail_intake.get_secret_value().split(",") if u.strip()]
        for url in urls:
            scheme = url.partition("://")[0]
            if scheme not in ("imap", "imaps", "smtp", "lmtp"):
                raise ValueError(
                    f"INCIDENTS_MAIL_INTAKE: {scheme or url!r} is not a source the service reads; "
                    "use imap://, imaps://, smtp:// or lmtp://"
                )
        return urls

    def resolved_secret_key(self) -> bytes:
        """The configured key, or one generated once and kept in the data folder."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.home / "secret_key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    @property
    def outbox_mail_dir(self) -> Path:
        return self.home / "outgoing-mail"
