"""Plain words for people: role names and local times, shared by pages and emails."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from incidents.policy.presentation import role_name
from incidents.vocabulary import Role


def role_words(role: str) -> str:
    """E.g. 'the City Digital Privacy Officer (CDPO)'; one table of names for pages and emails."""
    try:
        return role_name(Role(role))
    except ValueError:
        return role.replace("_", " ")


def local_time(moment: datetime | None, zone: str) -> str:
    """E.g. 'Tuesday 24 November 2026, 9:30 AM PST'; empty for no time."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%A %-d %B %Y, %-I:%M %p %Z")


def short_local_time(moment: datetime, zone: str) -> str:
    """E.g. '24 Nov 9:30 AM PST', for subject lines."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%-d %b %-I:%M %p %Z")
