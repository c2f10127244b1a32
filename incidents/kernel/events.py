"""The event base class and envelope. Each concept declares its own events beside its model.

An event has a past-tense name, a schema version, and travels in an `Envelope`, which carries
what CloudEvents 1.0 calls id, type, subject and time; `type` ends in the schema version
(`org.ai-incidents.obligation.breached.v1`), so a consumer can refuse a version it does not know
instead of misreading it. Every subclass registers its type on definition, for `parse`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from incidents.kernel.ids import new_id

TYPE_PREFIX = "org.ai-incidents."
SOURCE = "/ai-incidents"


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
    # Fields the record leaves out (the record is exported to auditors and the public): a
    # secret the event carries to its one consumer, such as a receipt code for an answer.
    unrecorded: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        known = EVENT_TYPES.setdefault(cls.type_name(), cls)
        if known is not cls:
            raise TypeError(f"two event classes share the type {cls.type_name()}")

    @classmethod
    def type_name(cls) -> str:
        return f"{TYPE_PREFIX}{cls.name}.v{cls.version}"

    def envelope(self, *, subject: str, time: datetime, id: str | None = None) -> Envelope:
        return Envelope(
            id=id or new_id(),
            type=self.type_name(),
            subject=subject,
            time=time,
            data=self.model_dump(mode="json"),
        )


# Every event type defined so far, by its versioned type name.
EVENT_TYPES: dict[str, type[Event]] = {}


def parse(envelope: Envelope) -> Event:
    """The typed event inside an envelope, or EventSchemaError saying what is wrong."""
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        raise EventSchemaError(f"unknown event type {envelope.type!r}")
    try:
        return cls.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventSchemaError(f"{envelope.type} data does not fit its schema: {exc}") from None
