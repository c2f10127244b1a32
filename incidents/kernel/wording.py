"""Plain words for people: local times, shared by pages and emails (labels: `vocabulary`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def local_time(moment: datetime | None, zone: str) -> str:
    """E.g. 'Tuesday 24 November 2026, 9:30 AM PST'; empty for no time."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%A %-d %B %Y, %-I:%M %p %Z")


def short_local_time(moment: datetime, zone: str) -> str:
    """E.g. '24 Nov 9:30 AM PST', for subject lines."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%-d %b %-I:%M %p %Z")
