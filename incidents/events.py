"""Event types. Each has a past-tense name, a schema version, and travels in an `Envelope`.

The envelope carries what CloudEvents 1.0 calls id, type, subject and time; `type` ends in the
schema version (`org.ai-incidents.obligation.breached.v1`), so a consumer can refuse a version it
does not know instead of misreading it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TYPE_PREFIX = "org.ai-incidents."
SOURCE = "/ai-incidents"
# Event ids derived from something stable (a clock's id) use this namespace, so a replayed clock
# firing carries the same id and consumers drop it as already handled.
EVENT_NAMESPACE = uuid.UUID("6f1c9a52-2f7d-4a9b-9d55-0c1f7f3f9e10")


class EventSchemaError(Exception):
    """An envelope whose type is unknown or whose data does not fit its schema."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    subject: str  # the report id
    time: datetime
    data: dict[str, Any]


class Event(BaseModel):
    """The data of an event. Subclasses name themselves with `name` and `version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return f"{TYPE_PREFIX}{cls.name}.v{cls.version}"

    def envelope(self, *, subject: str, time: datetime, id: str | None = None) -> Envelope:
        return Envelope(
            id=id or str(uuid.uuid4()),
            type=self.type_name(),
            subject=subject,
            time=time,
            data=self.model_dump(mode="json"),
        )


class ReportFiled(Event):
    name = "incident.reported"
    report_id: str
    reference: str
    kind: str
    ai_system: str
    department: str
    data_categories: list[str] = Field(default_factory=list)
    obligation_ids: list[str]
    opens: list[str] = Field(default_factory=list)  # security_case, sunset_review


class ObligationOpened(Event):
    name = "obligation.opened"
    obligation_id: str
    report_id: str
    role: str
    level: int  # 0: named by the policy; n: an escalation
    late: bool


class ReminderDue(Event):
    name = "obligation.reminder_due"
    obligation_id: str
    clock_id: str
    due_at: datetime
    late: bool  # fired well after its time, e.g. after a restart


class ObligationBreached(Event):
    name = "obligation.breached"
    obligation_id: str
    due_at: datetime
    late: bool


class ObligationAcknowledged(Event):
    name = "obligation.acknowledged"
    obligation_id: str
    by: str


class NoticeFailed(Event):
    """The mail server refused a notice for good; the obligation is escalated."""

    name = "notice.failed"
    notice_id: str
    obligation_id: str
    error: str


class PersonalInformationAcquired(Event):
    """Someone responsible confirmed that personal information was acquired: statutory breach
    notice clocks start from `confirmed_at`."""

    name = "incident.personal_information_acquired"
    report_id: str
    confirmed_at: datetime
    affected_count: int | None
    by: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type_name(): cls
    for cls in (
        ReportFiled,
        ObligationOpened,
        ReminderDue,
        ObligationBreached,
        ObligationAcknowledged,
        NoticeFailed,
        PersonalInformationAcquired,
    )
}


def parse(envelope: Envelope) -> Event:
    """The typed event inside an envelope, or EventSchemaError saying what is wrong."""
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        raise EventSchemaError(f"unknown event type {envelope.type!r}")
    try:
        return cls.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventSchemaError(f"{envelope.type} data does not fit its schema: {exc}") from None


def stable_id(*parts: str) -> str:
    """A deterministic event id for an event caused by something with a stable identity."""
    return str(uuid.uuid5(EVENT_NAMESPACE, ":".join(parts)))
