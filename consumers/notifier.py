"""The notifier: every opened obligation and every reminder becomes an email notice on record.

The notice is rendered and stored in the same transaction that marks the event handled; the
delivery worker sends it. So the record of who was told what exists before anything is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlmodel import select

from consumers.runner import Incoming
from incidents.intake.events import MailAnswerDue
from incidents.kernel.events import Envelope, Event
from incidents.kernel.ids import stable_id
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.vocabulary import IncidentKind, role_name
from incidents.kernel.wording import local_time, short_local_time
from incidents.notices.model import Notice, NoticePurpose
from incidents.obligations import service as obligations
from incidents.obligations.events import ObligationOpened, ReminderDue
from incidents.obligations.model import Obligation, ObligationStatus
from incidents.obligations.tokens import ack_token
from incidents.reports import service as reports
from incidents.reports.model import Report
from incidents.systems import service as systems
from notifications.outbound.render import render

# Rendering is the slow part. Every few milliseconds of it, this process's mail connections and
# Kafka fetches are served, rather than wait for the whole chunk. Yielding after every notice
# instead left the notifier one render per turn of the event loop: under load it fell behind
# (3.5 ms of wall time per notice for under 1 ms of work).
TURN = 0.005


@dataclass
class Notifier:
    base_url: str
    secret: bytes
    mail_domain: str
    wake_delivery: Callable[[], None] = lambda: None

    name = "notifier"
    handles: frozenset[type[Event]] = frozenset({ObligationOpened, ReminderDue, MailAnswerDue})

    async def handle(self, incoming: Sequence[Incoming], *, uow: UnitOfWork, now: datetime) -> None:
        answers = [
            await self._answer(e, env, uow=uow, now=now)
            for e, env in incoming
            if isinstance(e, MailAnswerDue)
        ]
        events = [(e, env) for e, env in incoming if isinstance(e, ObligationOpened | ReminderDue)]
        # Two queries for the whole chunk, rather than two for each notice.
        by_id = await obligations.obligations_by_id({e.obligation_id for e, _ in events}, uow=uow)
        reports_by_id = await reports.reports_by_id(
            {o.report_id for o in by_id.values() if o.report_id}, uow=uow
        )
        approved = await systems.approved_among(
            {r.ai_system for r in reports_by_id.values()}, uow=uow
        )
        notices: list[dict[str, Any]] = []
        turn_ends = time.monotonic() + TURN
        for event, envelope in events:
            if time.monotonic() >= turn_ends:
                await asyncio.sleep(0)
                turn_ends = time.monotonic() + TURN
            obligation = by_id.get(event.obligation_id)
            if obligation is None:
                raise LookupError(f"obligation {event.obligation_id} is not in the database")
            notices += [
                n.model_dump()
                for n in await self._notices(
                    event,
                    envelope,
                    obligation,
                    reports_by_id[obligation.report_id] if obligation.report_id else None,
                    approved,
                    uow=uow,
                    now=now,
                )
            ]
        await uow.insert(Notice, [*notices, *(a.model_dump() for a in answers)])
        uow.after_commit(self.wake_delivery)

    async def _answer(
        self, event: MailAnswerDue, envelope: Envelope, *, uow: UnitOfWork, now: datetime
    ) -> Notice:
        """The answer to someone who reported by email: the reference, what happens next, and
        the link; threaded to their message, and marked as an automatic reply (RFC 3834)."""
        report = await reports.report_by_id(event.report_id, uow=uow)
        rendered = render(
            "answer",
            {
                "reference": report.reference,
                "title": report.title,
                "report_url": f"{self.base_url}/reports/{report.reference}",
                "status_url": f"{self.base_url}/status",
                "receipt_code": event.receipt_code,
            },
        )
        notice_id = stable_id("answer", envelope.id)
        return Notice(
            id=notice_id,
            obligation_id=None,
            report_id=report.id,
            purpose=NoticePurpose.NOTICE,
            recipients=[event.to],
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            message_id=f"<answer-{notice_id}@{self.mail_domain}>",
            headers={
                "In-Reply-To": event.in_reply_to,
                "References": " ".join(event.references),
                "Auto-Submitted": "auto-replied",
            },
            next_attempt_at=now,
            created_at=now,
        )

    async def _notices(
        self,
        event: ObligationOpened | ReminderDue,
        envelope: Envelope,
        obligation: Obligation,
        report: Report | None,
        approved: set[str],
        *,
        uow: UnitOfWork,
        now: datetime,
    ) -> list[Notice]:
        """One notice for each person the obligation names: each carries a link that
        acknowledges as that person alone. `approved`: the approved AI systems' names, folded,
        among those the chunk's reports name."""
        if isinstance(event, ReminderDue):
            if obligation.status != ObligationStatus.OPEN:
                return []  # acknowledged after the reminder fired: nobody needs reminding
            purpose, late = NoticePurpose.REMINDER, event.late
        else:
            purpose = NoticePurpose.ESCALATION if obligation.level else NoticePurpose.NOTICE
            late = False
        escalated_from = ""
        if obligation.level:
            missed = await uow.session.exec(
                select(Obligation).where(
                    Obligation.id == obligation.escalated_from
                    if report is None
                    else Obligation.report_id == obligation.report_id,
                    Obligation.level == obligation.level - 1,
                    Obligation.status == ObligationStatus.BREACHED,
                )
            )
            escalated_from = "; ".join(
                f"{role_name(m.role)}, due {local_time(m.due_at, m.timezone)}" for m in missed
            )
        cite = obligation.citations[0] if obligation.citations else {}
        common = {
            "purpose": purpose,
            "late": late,
            "is_late": obligation.late,
            "due_local": local_time(obligation.due_at, obligation.timezone),
            "due_local_short": short_local_time(obligation.due_at, obligation.timezone),
            "role_words": role_name(obligation.role),
            "rule_title": " and ".join(obligation.rules),
            "citation": (
                f"{cite.get('document') or cite.get('file')}, “{cite.get('section')}”: "
                f"“{cite.get('quote')}”"
            ),
            "citation_url": f"{self.base_url}{cite['link']}" if cite.get("link") else "",
            "action": obligation.action or "",
            "escalated_from": escalated_from,
        }
        if report is None:
            # A duty about no report (an AI system's audit or review, an approval request):
            # the action says what it is about; the person's own page lists it.
            about = (obligation.action or "A duty").split(":")[0][:120]
            template = "duty"
            context: dict[str, Any] = {
                **common,
                "about": about,
                "page_url": f"{self.base_url}/me",
            }
        else:
            template = "obligation"
            context = {**common, **self._report_context(report, obligation, approved)}
        notices = []
        for person in obligation.recipients:
            email = person["email"]
            token = ack_token(self.secret, obligation.id, email)
            link = f"{self.base_url}/ack/{obligation.id}?{urlencode({'t': token, 'r': email})}"
            rendered = render(template, {**context, "ack_url": link})
            notice_id = stable_id("notice", envelope.id, email.lower())
            notices.append(
                Notice(
                    id=notice_id,
                    obligation_id=obligation.id,
                    report_id=report.id if report else None,
                    purpose=purpose,
                    recipients=[email],
                    subject=rendered.subject,
                    text_body=rendered.text,
                    html_body=rendered.html,
                    message_id=f"<notice-{notice_id}@{self.mail_domain}>",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        return notices

    @staticmethod
    def _report_context(
        report: Report, obligation: Obligation, approved: set[str]
    ) -> dict[str, Any]:
        return {
            "reference": report.reference,
            "kind_words": IncidentKind(report.kind).plain,
            "title": report.title,
            "description": report.description,
            "show_details": not report.data_categories,
            "data_categories": ", ".join(report.data_categories).upper(),
            "ai_system": report.ai_system,
            # A report about a system nobody approved says so: that is news in itself.
            "ai_system_unapproved": report.ai_system.casefold() not in approved,
            "department": report.reporter_department,
            "reporter_name": report.reporter_name,
            "reporter_email": report.reporter_email,
            "discovered_local": local_time(report.discovered_at, obligation.timezone),
            "interpretation": obligation.interpretation,
            "holidays": "; ".join(obligation.holidays or ()),
        }
