"""Which days are business days for a pack: not weekends, not its jurisdiction's public holidays
(the `holidays` package's calendar for, e.g., US-CA), not the organisation's own closures
(the pack's `observed_holidays`), and not the days the deployment adds (INCIDENTS_HOLIDAYS).

Pure: the public calendar is computed, not looked up, for whatever year a deadline falls in.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import holidays as public_holidays

from incidents.policy.schema import Pack

DEPLOYMENT = "a holiday set for this deployment (INCIDENTS_HOLIDAYS)"


@functools.cache
def _public(jurisdiction: str) -> public_holidays.HolidayBase:
    country, _, subdivision = jurisdiction.partition("-")
    return public_holidays.country_holidays(country, subdiv=subdivision or None)


@dataclass(frozen=True)
class BusinessCalendar:
    """The days off one pack counts, each with its name (for saying what moved a deadline)."""

    jurisdiction: str | None = None
    every_year: tuple[tuple[str, str], ...] = ()  # ("12-24", "Christmas Eve")
    once: tuple[tuple[date, str], ...] = ()
    open_on: frozenset[str] = frozenset()  # public holidays worked, by the calendar's name

    def name_of(self, day: date) -> str | None:
        """Why `day` is a day off, or None if it is not a holiday (weekends aside)."""
        names = [n for d, n in self.once if d == day]
        names += [n for md, n in self.every_year if md == day.strftime("%m-%d")]
        if self.jurisdiction is not None:
            public = _public(self.jurisdiction).get(day)
            if public:
                # The calendar joins two holidays on one day with "; ".
                names += [n for n in str(public).split("; ") if n not in self.open_on]
        return "; ".join(dict.fromkeys(names)) or None

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.name_of(day) is not None


def calendar_for(pack: Pack, extra: Collection[date] = ()) -> BusinessCalendar:
    """The pack's calendar, with the deployment's own days off added."""
    every_year = tuple((d.on, d.name) for d in pack.observed_holidays if len(d.on) == 5)
    once = tuple(
        (date.fromisoformat(d.on), d.name) for d in pack.observed_holidays if len(d.on) == 10
    )
    once += tuple((day, DEPLOYMENT) for day in sorted(extra))
    return BusinessCalendar(pack.jurisdiction, every_year, once, frozenset(pack.open_on))
