"""Plain words for people: role names and local times, shared by pages and emails."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

ROLE_WORDS = {
    "supervisor": "the reporter's supervisor",
    "cdpo": "the City Digital Privacy Officer",
    "employee_relations": "the Office of Employee Relations",
    "cio": "the Chief Information Officer",
    "ciso": "the Chief Information Security Officer",
    "iso": "the Information Security Officer",
    "aio": "the AI Officer",
    "it_department": "the IT Department",
    "data_privacy_officer": "the Data Privacy Officer",
    "ai_coordinator": "the AI Coordinator",
    "ai_committee": "the AI Committee",
    "legal": "the City Attorney's Office",
    "security_team": "Security Operations",
}


def role_words(role: str) -> str:
    return ROLE_WORDS.get(role, role.replace("_", " "))


def local_time(moment: datetime | None, zone: str) -> str:
    """E.g. 'Tuesday 24 November 2026, 9:30 AM PST'; empty for no time."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%A %-d %B %Y, %-I:%M %p %Z")


def short_local_time(moment: datetime, zone: str) -> str:
    """E.g. '24 Nov 9:30 AM PST', for subject lines."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%-d %b %-I:%M %p %Z")
