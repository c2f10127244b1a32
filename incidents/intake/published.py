"""Reports other systems publish as events (AI monitoring tools, other city systems): a
CloudEvent whose type ends in `report.submitted.v1` and whose data is the API's report body.

Each is filed through the same intake as the form, once per event (its source and id): an
event delivered again files nothing new and answers with the report it filed before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import select

from incidents.kernel.errors import InvalidInput
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.policy import PolicySet
from incidents.reports import service as reports
from incidents.reports.model import Channel, Report
from incidents.reports.schemas import NewReport

SUBMITTED = "report.submitted.v1"


@dataclass(frozen=True)
class Published:
    """The parts of a CloudEvent the intake reads."""

    id: str
    source: str
    type: str
    data: Any


def check(event: Published) -> None:
    """InvalidInput naming each attribute at fault."""
    errors = {}
    if not event.id.strip():
        errors["id"] = "Give the event an id, unique for its source."
    if not event.source.strip():
        errors["source"] = "Give the event's source, e.g. urn:city:ai-monitor."
    if not event.type.endswith(SUBMITTED):
        errors["type"] = f"The service takes events whose type ends in {SUBMITTED}."
    if errors:
        raise InvalidInput(errors)


def event_key(event: Published) -> str:
    """One key per event, whatever the lengths of its source and id (CloudEvents: the pair is
    unique)."""
    return hashlib.sha256(f"{event.source}\x00{event.id}".encode()).hexdigest()


async def filed_before(event: Published, *, uow: UnitOfWork) -> Report | None:
    query = select(Report).where(Report.event_key == event_key(event))
    return (await uow.session.exec(query)).first()


def draft(event: Published, report: NewReport) -> reports.Draft:
    return reports.Draft(
        report, Channel.EVENT, origin=reports.Origin(source=event.source, key=event_key(event))
    )


async def file_published(
    event: Published, report: NewReport, *, uow: UnitOfWork, policy: PolicySet, now: datetime
) -> tuple[Report, reports.Filed | None]:
    """The report an event files: (the report, how it was filed) for a new one, (the report
    filed before, None) for an event seen already."""
    earlier = await filed_before(event, uow=uow)
    if earlier is not None:
        return earlier, None
    [filed] = await reports.file_reports([draft(event, report)], uow=uow, policy=policy, now=now)
    return filed.report, filed
