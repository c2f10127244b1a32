"""Deadline arithmetic. Pure: every function takes the times it needs; none reads a clock.

Elapsed durations are added in UTC, so "24 hours" is 24 real hours even across a daylight-saving
change. Business-day rules count in the organisation's local calendar.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def require_aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must carry a UTC offset, e.g. 2026-03-08T09:30:00-08:00")
    return moment.astimezone(UTC)


def after_elapsed(start: datetime, duration: timedelta) -> datetime:
    """`duration` of real time after `start`, in UTC."""
    return require_aware(start, "the start time") + duration


def is_business_day(day: date, holidays: Container[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def after_business_days(
    start: datetime,
    days: int,
    *,
    zone: ZoneInfo,
    end_of_day: time,
    holidays: Container[date] = (),
) -> datetime:
    """End of business on the `days`-th business day after `start`'s local day.

    With `days=0` it is the end of the same business day, or of the next one when `start` falls on
    a weekend, a holiday or after business hours.
    """
    return business_days_walk(start, days, zone=zone, end_of_day=end_of_day, holidays=holidays)[0]


def business_days_walk(
    start: datetime,
    days: int,
    *,
    zone: ZoneInfo,
    end_of_day: time,
    holidays: Container[date] = (),
) -> tuple[datetime, list[date]]:
    """`after_business_days`, and the holidays on weekdays it passed over: the days without
    which the deadline would have come sooner."""
    local = require_aware(start, "the start time").astimezone(zone)
    day = local.date()
    skipped: list[date] = []
    if days == 0:
        if day.weekday() < 5 and day in holidays and local.time() < end_of_day:
            skipped.append(day)
        if not is_business_day(day, holidays) or local.time() >= end_of_day:
            days = 1
    counted = 0
    while counted < days or not is_business_day(day, holidays):
        day += timedelta(days=1)
        if is_business_day(day, holidays):
            counted += 1
        elif day.weekday() < 5:
            skipped.append(day)
    return datetime.combine(day, end_of_day, tzinfo=zone).astimezone(UTC), skipped
