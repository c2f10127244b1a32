"""Rate limits that hold across every instance: counters in the database all instances share.

A fixed window per client and purpose (e.g. `lookup:203.0.113.7`, a minute at a time): each
request adds one with a single upsert and reads the new count back. Simple and portable
(SQLite and PostgreSQL both have INSERT … ON CONFLICT … RETURNING); a client can at most double
its allowance across a window's edge, which is enough to stop guessing receipt codes or
flooding intake. Old windows are deleted now and then by the requests themselves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, SQLModel

from incidents.kernel.columns import time_field
from incidents.kernel.unit_of_work import UnitOfWorkFactory


class RateWindow(SQLModel, table=True):
    """How many requests one client made for one purpose in one window."""

    __tablename__ = "rate_windows"

    key: str = Field(primary_key=True, max_length=200)  # purpose:client
    window_start: datetime = time_field(primary_key=True)
    hits: int = 0


@dataclass(frozen=True)
class Limit:
    """`count` requests per `per` for each client; 0 turns the limit off."""

    count: int
    per: timedelta

    @classmethod
    def parse(cls, text: str) -> Limit:
        """'20/minute', '300/hour', '5/second' or '0' (off)."""
        number, _, unit = text.strip().partition("/")
        seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}.get(
            unit.strip() or "minute"
        )
        if not number.strip().isdigit() or seconds is None:
            raise ValueError(
                f"{text!r}: write a number per second, minute, hour or day, e.g. 20/minute"
            )
        return cls(int(number), timedelta(seconds=seconds))


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = RateWindow.__table__  # type: ignore[attr-defined]


async def hit(uows: UnitOfWorkFactory, key: str, limit: Limit, now: datetime) -> float | None:
    """Count one request; the seconds to wait if it is over the limit, else None."""
    if limit.count <= 0:
        return None
    period = limit.per.total_seconds()
    start = datetime.fromtimestamp(now.timestamp() // period * period, now.tzinfo)
    dialect = uows.dialect
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = (
        insert(_RATE)
        .values(key=key, window_start=start, hits=1)
        .on_conflict_do_update(
            index_elements=["key", "window_start"], set_={"hits": _RATE.c.hits + 1}
        )
        .returning(_RATE.c.hits)
    )
    [(hits,)] = await uows.execute(upsert)
    if random.random() < 0.01:  # now and then, forget windows long past
        await uows.execute(delete(_RATE).where(_RATE.c.window_start < now - timedelta(days=1)))
    if hits <= limit.count:
        return None
    return max(1.0, (start + limit.per - now).total_seconds())


configure_mappers()
