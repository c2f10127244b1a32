"""Column types every table uses: aware UTC times, JSON, and enums stored as their plain strings.

Times are timezone-aware UTC everywhere inside; local time is for display only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

E = TypeVar("E", bound=StrEnum)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; gives back aware datetimes on SQLite too (which keeps no offsets)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: every stored time must carry an offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator[E], Generic[E]):
    """A `StrEnum` stored as its plain string (VARCHAR), read back as the enum.

    The column is the same VARCHAR it was when statuses were bare strings, so no migration is
    needed, and a value the enum does not know fails loudly on reading rather than passing on.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length=length)
        self.enum = enum
        self.length = length

    def process_bind_param(self, value: E | str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> E | None:
        return None if value is None else self.enum(value)


def time_field(**kw: Any) -> Any:
    """A column of aware UTC times."""
    return Field(sa_type=UTCDateTime, **kw)


def json_field(**kw: Any) -> Any:
    """A column of JSON (lists and objects)."""
    return Field(sa_type=sa.JSON, **kw)


def enum_field(enum: type[E], *, length: int = 20, **kw: Any) -> Any:
    """A column of one enum's values, stored as their strings."""
    return Field(sa_type=EnumText(enum, length), max_length=length, **kw)
