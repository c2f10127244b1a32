"""A report's timeline, read from the record: what happened to it, when, and who did it.

Read from the hash-chained record rather than from the report's current state, so the page
shows what was written down as it happened: who was told, reminded, escalated to, and who
acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.vocabulary import role_name
from incidents.obligations.model import Obligation
from incidents.record.model import AuditEntry
from incidents.reports.model import Report


@dataclass(frozen=True)
class Moment:
    at: datetime
    what: str  # a sentence in plain words
    actor: str  # who did it: an email address, "reporter", "system"
    seq: int  # the record entry, for anyone checking it against an export


def _whom(obligations: Mapping[str, Obligation], obligation_id: Any) -> str:
    found = obligations.get(str(obligation_id))
    if found is None:
        return "an obligation"
    people = ", ".join(r["name"] for r in found.recipients)
    return f"{role_name(found.role)} ({people})" if people else role_name(found.role)


def _sentence(entry: AuditEntry, obligations: Mapping[str, Obligation]) -> str:
    data = entry.data
    whom = _whom(obligations, data.get("obligation_id"))
    match entry.action:
        case "incident.reported":
            return f"Report {data.get('reference', '')} filed".strip()
        case "obligation.opened":
            level = int(data.get("level") or 0)
            return f"Escalated to {whom}" if level else f"{whom} to be told"
        case "notice.sent":
            to = ", ".join(data.get("to") or [])
            return f"Email sent to {to}" if to else "Email sent"
        case "notice.failed":
            return f"The mail server refused the email to {whom}: {data.get('error', '')}"
        case "obligation.reminder_due":
            return f"Reminder due for {whom}"
        case "obligation.breached":
            return f"Deadline passed for {whom} without acknowledgement"
        case "obligation.acknowledged":
            return f"Acknowledged for {whom} by {data.get('by', '')}"
        case "obligation.held":
            return f"Clock held for {whom}: {data.get('reason', '')}"
        case "obligation.released":
            return f"Clock released for {whom}; now due {data.get('due_at', '')}"
        case "security_case.opened":
            return f"Security case {data.get('reference', '')} opened ({data.get('severity')})"
        case "security_case.report_linked":
            return f"Added to security case {data.get('reference', '')}"
        case "security_case.acknowledged":
            return f"Security case {data.get('reference', '')} taken by {data.get('by', '')}"
        case "security_case.phase_changed":
            return (
                f"Security case {data.get('reference', '')} moved from "
                f"{str(data.get('before', '')).replace('_', ' ')} to "
                f"{str(data.get('after', '')).replace('_', ' ')}"
            )
        case "incident.classified":
            kind = str(data.get("kind", "")).replace("_", " ")
            return f"Classified as {kind} by {data.get('by', '')}; its rules now apply"
        case "mail.answer_due":
            return f"Answered by email, to {data.get('to', '')}"
        case "mail.reply_added":
            text = " ".join(str(data.get("text", "")).split())
            short = text if len(text) <= 400 else text[:400] + "…"
            return f"Email from {data.get('sender', '')}: “{data.get('subject', '')}”: {short}"
        case "incident.personal_information_acquired":
            return f"Personal information confirmed acquired, by {data.get('by', '')}"
        case _:
            return entry.action.replace("_", " ").replace(".", ": ")


async def timeline(
    report: Report, duties: list[Obligation], *, uow: UnitOfWork, case_work: bool = False
) -> list[Moment]:
    """The record's entries about this report, oldest first.

    `duties` are the obligations the viewer sees. Without `case_work`, entries about a security
    case (and about its page and tasks, which are not among `duties`) are left out: to anyone
    outside security, the case does not exist."""
    entries = await uow.session.exec(
        select(AuditEntry).where(AuditEntry.subject == report.id).order_by(col(AuditEntry.seq))
    )
    by_id = {o.id: o for o in duties}
    shown = []
    for e in entries:
        about = e.data.get("obligation_id")
        if not case_work and (
            e.action.startswith("security_case.") or (about is not None and about not in by_id)
        ):
            continue
        shown.append(Moment(at=e.at, what=_sentence(e, by_id), actor=e.actor, seq=e.seq))
    return shown
