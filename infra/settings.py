"""The one settings object. Every value comes from an `INCIDENTS_*` environment variable."""

from __future__ import annotations

import json
import secrets
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INCIDENTS_", extra="ignore")

    home: Path = Field(
        default=Path("incidents-data"),
        description="data folder: the embedded database, outgoing mail when no SMTP server is set",
    )
    database_url: str | None = Field(
        default=None, description="default: an SQLite file in INCIDENTS_HOME"
    )
    policy: Annotated[list[str], NoDecode] = Field(
        default=["san-jose"], description="comma-separated policy pack names or pack file paths"
    )
    directory: Path | None = Field(
        default=None, description="the people behind each role; default: the demo directory"
    )
    smtp_url: str | None = Field(
        default=None,
        description="e.g. smtp://user:pass@mail.example:587?starttls=1; unset: mail goes to files",
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
        description="signs acknowledgement links; default: generated in INCIDENTS_HOME",
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
        description='more aiokafka consumer settings, JSON, e.g. {"session_timeout_ms": 10000}',
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

    @field_validator("policy", mode="before")
    @classmethod
    def _split_policy(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("holidays", mode="before")
    @classmethod
    def _split_dates(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [d.strip() for d in v.split(",") if d.strip()]
        return v

    @field_validator("interpretations", "kafka_consumer_options", mode="before")
    @classmethod
    def _json(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home / 'incidents.db').resolve()}"

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
