"""Who is on call for security, and the chain that pages them until someone acknowledges.

Written as data in the directory file's `on_call` section, the way Grafana OnCall, PagerDuty and
Opsgenie model it: shifts (weekdays and hours in the organisation's time zone) each naming a
primary and a secondary, and a chain of steps: notify, wait, notify the next, until someone
acknowledges. A case's page is an obligation whose escalation levels are the chain's steps, so
it uses the same clocks, notices and acknowledgement links as any other obligation.

    on_call:
      timezone: America/Los_Angeles
      shifts:
        - name: business hours
          days: [mon, tue, wed, thu, fri]
          start: "08:00"
          end: "18:00"
          primary: [{ name: Sam Secure, email: ciso@city.example }]
          secondary: [{ name: Security Operations, email: soc@city.example }]
        - name: nights and weekends       # `end` before `start`: runs past midnight
          days: [mon, tue, wed, thu, fri, sat, sun]
          start: "18:00"
          end: "08:00"
          primary: [...]
      chain:
        - { notify: [security_on_call], wait: PT15M }
        - { notify: [security_backup], wait: PT15M }
        - { notify: [ciso], wait: PT30M }
      repeat: 1               # then once more from the top, if nobody has acknowledged

Pure: `now` is always an argument.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from incidents.kernel.vocabulary import Role

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ON_CALL_ROLES = frozenset({Role.SECURITY_ON_CALL, Role.SECURITY_BACKUP})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnCallPerson(_Strict):
    name: str = Field(min_length=1)
    email: EmailStr


class Shift(_Strict):
    name: str = Field(min_length=1)
    days: list[Day] = Field(min_length=1)
    start: time
    end: time  # before `start`: the shift runs past midnight into the next day
    primary: list[OnCallPerson] = Field(min_length=1)
    secondary: list[OnCallPerson] = Field(default_factory=list)

    def covers(self, local: datetime) -> bool:
        """Whether this shift is on at a local time. A shift past midnight belongs to the day it
        started: Friday 18:00–08:00 covers Saturday 03:00."""
        clock = local.time()
        today = DAYS[local.weekday()]
        if self.start < self.end:
            return today in self.days and self.start <= clock < self.end
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (today in self.days and clock >= self.start) or (
            yesterday in self.days and clock < self.end
        )


class Step(_Strict):
    notify: list[Role] = Field(min_length=1)
    wait: timedelta = Field(gt=timedelta(0), description="how long before the next step")


class Roster(_Strict):
    timezone: str
    shifts: list[Shift] = Field(min_length=1)
    chain: list[Step] = Field(min_length=1)
    repeat: int = Field(
        default=1, ge=0, le=10, description="how many more times the chain runs from its start"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(
                f"{v!r} is not a time zone; use a name such as America/Chicago"
            ) from None
        return v

    def shift_at(self, now: datetime) -> Shift | None:
        local = now.astimezone(ZoneInfo(self.timezone))
        return next((s for s in self.shifts if s.covers(local)), None)

    def on_call(self, role: Role, now: datetime) -> list[OnCallPerson]:
        """Who answers for `role` (security_on_call: the primary, security_backup: the
        secondary) at `now`; empty when no shift covers that moment."""
        shift = self.shift_at(now)
        if shift is None:
            return []
        return list(shift.primary if role is Role.SECURITY_ON_CALL else shift.secondary)
