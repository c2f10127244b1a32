"""Properties of the deadline arithmetic that must hold for any moment, zone and holiday list."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from incidents.policy.deadlines import after_business_days, after_elapsed, is_business_day

ZONES = st.sampled_from(
    [ZoneInfo(z) for z in ("America/Los_Angeles", "America/Chicago", "America/New_York", "UTC")]
)
# Moments around both 2026 US daylight-saving changes and elsewhere in the year.
MOMENTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC)
)
HOLIDAYS = st.frozensets(
    st.dates(min_value=date(2025, 12, 1), max_value=date(2027, 3, 1)), max_size=40
)
END = st.sampled_from([time(17, 0), time(16, 30), time(18, 0)])


@given(start=MOMENTS, zone=ZONES, hours=st.integers(min_value=1, max_value=24 * 60))
def test_elapsed_deadline_is_exactly_that_many_hours_after_discovery(
    start: datetime, zone: ZoneInfo, hours: int
) -> None:
    local_start = start.astimezone(zone)  # whatever zone the report was written in
    due = after_elapsed(local_start, timedelta(hours=hours))
    assert due.tzinfo is not None
    assert due - start == timedelta(hours=hours)
    assert due.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=hours)


@given(start=MOMENTS, zone=ZONES, days=st.integers(0, 30), holidays=HOLIDAYS, end=END)
def test_business_day_deadline_lands_on_a_business_day_at_close_of_business(
    start: datetime, zone: ZoneInfo, days: int, holidays: frozenset[date], end: time
) -> None:
    due = after_business_days(start, days, zone=zone, end_of_day=end, holidays=holidays)
    local = due.astimezone(zone)
    assert is_business_day(local.date(), holidays)
    assert local.time() == end
    assert due > start  # never before discovery


@given(start=MOMENTS, zone=ZONES, days=st.integers(1, 30), holidays=HOLIDAYS)
def test_business_day_deadline_counts_exactly_n_business_days(
    start: datetime, zone: ZoneInfo, days: int, holidays: frozenset[date]
) -> None:
    due = after_business_days(start, days, zone=zone, end_of_day=time(17), holidays=holidays)
    first, last = start.astimezone(zone).date(), due.astimezone(zone).date()
    between = [first + timedelta(d) for d in range(1, (last - first).days + 1)]
    assert sum(is_business_day(d, holidays) for d in between) == days


@given(start=MOMENTS, zone=ZONES, hours=st.integers(min_value=1, max_value=24 * 60))
def test_no_deadline_is_before_discovery(start: datetime, zone: ZoneInfo, hours: int) -> None:
    assert after_elapsed(start.astimezone(zone), timedelta(hours=hours)) > start
