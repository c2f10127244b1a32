"""What happens to a report: it is filed; someone confirms personal information was acquired."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from incidents.kernel.events import Event


class ReportFiled(Event):
    name = "incident.reported"
    report_id: str
    reference: str
    kind: str
    ai_system: str
    department: str
    data_categories: list[str] = Field(default_factory=list)
    obligation_ids: list[str]
    opens: list[str] = Field(default_factory=list)  # security_case, sunset_review


class ReportClassified(ReportFiled):
    """A triager chose the kind of a report that came without one (by email): the rules for
    that kind now apply, their clocks counted from the original discovery. Consumers that act
    on a filed report act on this too."""

    name = "incident.classified"
    by: str


class PersonalInformationAcquired(Event):
    """Someone responsible confirmed that personal information was acquired: statutory breach
    notice clocks start from `confirmed_at`."""

    name = "incident.personal_information_acquired"
    report_id: str
    confirmed_at: datetime
    affected_count: int | None
    by: str
