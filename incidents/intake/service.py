"""Use cases of mail that comes in: keep it, then file it as a report, add it to the report it
answers, ignore it, or quarantine it. Never drop it.

Each message is stored whole (its raw bytes, keyed by their SHA-256) in the same transaction
that files its report, so a message handled twice (a crash before the mailbox moved it, a relay
that delivers again) files nothing new.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import col, select

from incidents.intake.events import MailAnswerDue, MailQuarantined, MailReplyAdded
from incidents.intake.message import (
    Attachment,
    InboundMessage,
    MalformedMessage,
    discovered_in_text,
    no_answer_reason,
    parse,
    references_in_subject,
)
from incidents.intake.model import InboundMail, Outcome
from incidents.kernel import files
from incidents.kernel.errors import Conflict, InvalidInput, NotFound
from incidents.kernel.unit_of_work import UnitOfWork
from incidents.kernel.vocabulary import IncidentKind
from incidents.notices.model import Notice
from incidents.obligations import service as obligations
from incidents.policy import PolicySet
from incidents.reports import service as reports
from incidents.reports.model import Channel, Report
from incidents.reports.schemas import NOT_NAMED, NewReport, Reporter

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class MailRules:
    """How mail that comes in is taken: the service's own addresses (never answered), the
    sender domains allowed (none: any), and how many messages one sender may send an hour."""

    own_addresses: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    per_sender_per_hour: int = 20
    inventory: Collection[str] = field(default_factory=tuple)


def mail_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


async def receive(
    raw: bytes, *, uow: UnitOfWork, policy: PolicySet, rules: MailRules, now: datetime
) -> InboundMail:
    """Take one message: the stored record of it, with what became of it."""
    key = mail_id(raw)
    done = await uow.session.get(InboundMail, key)
    if done is not None:
        return done  # handled before: a second delivery files nothing
    try:
        message = parse(raw)
    except MalformedMessage as exc:
        return _keep(key, raw, None, Outcome.QUARANTINED, exc.reason, uow=uow, now=now)
    same = (
        await uow.session.exec(
            select(InboundMail).where(InboundMail.message_id == message.message_id)
        )
    ).first()
    if same is not None and same.outcome is not Outcome.QUARANTINED:
        return same  # the same message again, through another relay
    why_not = no_answer_reason(message, rules.own_addresses)
    if why_not is not None:
        return _keep(key, raw, message, Outcome.IGNORED, why_not, uow=uow, now=now)
    refused = await _refusal(message, rules, uow=uow, now=now)
    if refused is not None:
        return _keep(key, raw, message, Outcome.QUARANTINED, refused, uow=uow, now=now)
    answered = await _report_answered(message, uow=uow)
    if answered is not None:
        return _thread(key, raw, message, answered, uow=uow, now=now)
    return await _file(key, raw, message, uow=uow, policy=policy, rules=rules, now=now)


async def _refusal(
    message: InboundMessage, rules: MailRules, *, uow: UnitOfWork, now: datetime
) -> str | None:
    sender = message.sender_email or ""
    domain = sender.rpartition("@")[2]
    if rules.allowed_domains and domain not in rules.allowed_domains:
        return f"the sender's domain ({domain}) is not among those allowed to report by email"
    recent = await uow.session.exec(
        select(func.count()).where(
            InboundMail.sender == sender, col(InboundMail.received_at) >= now - timedelta(hours=1)
        )
    )
    if recent.one() >= rules.per_sender_per_hour:
        return f"more than {rules.per_sender_per_hour} messages from {sender} within an hour"
    return None


async def _report_answered(message: InboundMessage, *, uow: UnitOfWork) -> Report | None:
    """The report a message answers: by the ids it answers (a notice's, or an earlier message
    of the thread), then by a [AI-2026-000123] token in its subject."""
    ids = [*message.in_reply_to, *reversed(message.references)]
    if ids:
        notice = (
            await uow.session.exec(
                select(Notice.report_id).where(
                    col(Notice.message_id).in_(ids), col(Notice.report_id).is_not(None)
                )
            )
        ).first()
        if notice is not None:
            return await reports.report_by_id(notice, uow=uow)
        earlier = (
            await uow.session.exec(
                select(InboundMail.report_id).where(
                    col(InboundMail.message_id).in_(ids), col(InboundMail.report_id).is_not(None)
                )
            )
        ).first()
        if earlier is not None:
            return await reports.report_by_id(earlier, uow=uow)
    # A reference is easy to guess, a message id is not: by the subject alone, only the
    # reporter or someone the report's obligations name add to its timeline. Anyone else's
    # message is a report of its own.
    sender = (message.sender_email or "").lower()
    for reference in references_in_subject(message.subject):
        try:
            report = await reports.by_reference(reference, uow=uow)
        except NotFound:
            continue
        duties = await obligations.obligations_of(report.id, uow=uow)
        named = {r["email"].lower() for o in duties for r in o.recipients}
        if sender and (sender == report.reporter_email.lower() or sender in named):
            return report
    return None


def _keep(
    key: str,
    raw: bytes,
    message: InboundMessage | None,
    outcome: Outcome,
    reason: str,
    *,
    uow: UnitOfWork,
    now: datetime,
    report_id: str | None = None,
) -> InboundMail:
    kept = InboundMail(
        id=key,
        message_id=message.message_id if message else f"<sha256-{key}@inbound.invalid>",
        sender=message.sender_email if message else None,
        subject=(message.subject if message else "")[:998],
        raw=raw,
        received_at=now,
        outcome=outcome,
        reason=reason[:2000],
        report_id=report_id,
        attachments=[attachment_record(a) for a in (message.attachments if message else ())],
    )
    uow.session.add(kept)
    if outcome is Outcome.QUARANTINED:
        # The record's subjects are 36 characters: the id's first 36 hex digits name it.
        uow.emit(MailQuarantined(mail_id=key, reason=kept.reason), subject=key[:36], time=now)
    return kept


def _thread(
    key: str,
    raw: bytes,
    message: InboundMessage,
    report: Report,
    *,
    uow: UnitOfWork,
    now: datetime,
) -> InboundMail:
    kept = _keep(
        key, raw, message, Outcome.THREADED, "a reply", uow=uow, now=now, report_id=report.id
    )
    uow.emit(
        MailReplyAdded(
            mail_id=key,
            report_id=report.id,
            sender=message.sender_email or "",
            subject=message.subject[:300],
            text=message.text[:5000],
        ),
        subject=report.id,
        time=now,
        actor=message.sender_email or "someone by email",
    )
    return kept


def attachment_record(a: Attachment) -> dict[str, Any]:
    """What is known of an attachment: its name, type, size and SHA-256, and whether it is
    within the limits a case's evidence has (size, type, contents), with why not. The message
    itself is kept whole either way."""
    refused = files.problems(a.filename, files.normal_type(a.content_type), a.data)
    return {
        "name": a.filename,
        "type": a.content_type,
        "size": len(a.data),
        "sha256": a.sha256,
        "kept": not refused,
        "why": " ".join(refused.values()),
    }


def _attachments_said(message: InboundMessage) -> str:
    """The attachments, listed under the report's text, for the people told of it."""
    lines = []
    for a in map(attachment_record, message.attachments):
        line = f"- {a['name']} ({a['type']}, {a['size']:,} bytes, SHA-256 {a['sha256']})"
        lines.append(line if a["kept"] else f"{line}: not kept as evidence. {a['why']}")
    return "\n\nAttachments:\n" + "\n".join(lines) if lines else ""


def _department(policy: PolicySet, email: str) -> str:
    address = email.casefold()
    for name, scope in policy.directory.departments.items():
        if name != "*" and any(
            str(p.email).casefold() == address for people in scope.values() for p in people
        ):
            return name
    return "Not stated"


def _system_named(message: InboundMessage, inventory: Collection[str]) -> str:
    text = f"{message.subject}\n{message.text}".casefold()
    named = [n for n in inventory if n.casefold() in text]
    return max(named, key=len) if named else NOT_NAMED


def _discovered(message: InboundMessage, policy: PolicySet, now: datetime) -> datetime:
    said = discovered_in_text(message.text)
    if said is not None and said.tzinfo is None:
        said = said.replace(tzinfo=policy.packs[0].zone if policy.packs else None)
    moment = said or message.date or now
    return min(moment, now)


def _printable(text: str) -> str:
    """Text without the control characters the report's fields refuse (NUL and the like)."""
    return "".join(c for c in text if c in "\n\t" or not unicodedata.category(c).startswith("C"))


def draft_of(
    message: InboundMessage, *, policy: PolicySet, rules: MailRules, now: datetime
) -> NewReport:
    """The report a message makes: the same fields, and the same checks, as the form's."""
    sender = message.sender_email or ""
    title = _printable(message.subject).strip() or "(no subject)"
    if len(title) < 3:
        title = f"{title} (by email)"
    return NewReport(
        kind=IncidentKind.UNCLASSIFIED,
        title=title[:200],
        description=(
            (_printable(message.text).strip() or "(The message had no text.)")[:19_000]
            + _attachments_said(message)
        )[:20_000],
        discovered_at=_discovered(message, policy, now),
        reporter=Reporter(
            name=message.sender_name or sender,
            email=sender,
            department=_department(policy, sender),
        ),
        ai_system=_system_named(message, rules.inventory),
    )


async def _file(
    key: str,
    raw: bytes,
    message: InboundMessage,
    *,
    uow: UnitOfWork,
    policy: PolicySet,
    rules: MailRules,
    now: datetime,
) -> InboundMail:
    try:
        report = draft_of(message, policy=policy, rules=rules, now=now)
        [filed] = await reports.file_reports(
            [reports.Draft(report, Channel.EMAIL)], uow=uow, policy=policy, now=now
        )
    except (ValidationError, InvalidInput) as exc:
        return _keep(
            key, raw, message, Outcome.QUARANTINED, f"not a report: {exc}", uow=uow, now=now
        )
    kept = _keep(key, raw, message, Outcome.FILED, "", uow=uow, now=now, report_id=filed.report.id)
    uow.emit(
        MailAnswerDue(
            mail_id=key,
            report_id=filed.report.id,
            to=message.sender_email or "",
            in_reply_to=message.message_id,
            references=[*message.references, message.message_id][-20:],
            threaded=False,
            receipt_code=filed.receipt_code,
        ),
        subject=filed.report.id,
        time=now,
    )
    return kept


# --- quarantine ------------------------------------------------------------------------------


async def quarantined(*, uow: UnitOfWork) -> list[InboundMail]:
    rows = await uow.session.exec(
        select(InboundMail)
        .where(InboundMail.outcome == Outcome.QUARANTINED)
        .order_by(col(InboundMail.received_at))
    )
    return list(rows)


async def by_id(key: str, *, uow: UnitOfWork) -> InboundMail:
    found = await uow.session.get(InboundMail, key)
    if found is None:
        # Ids are long: a person may give the first characters, as with git.
        rows = list(
            await uow.session.exec(
                select(InboundMail).where(col(InboundMail.id).startswith(key.lower())).limit(2)
            )
        )
        if len(rows) != 1 or len(key) < 6:
            raise NotFound("No message kept has that id.")
        found = rows[0]
    return found


async def release(
    key: str, by: str, *, uow: UnitOfWork, policy: PolicySet, rules: MailRules, now: datetime
) -> InboundMail:
    """A person looked at a quarantined message and releases it: it is filed as a report (an
    unreadable one with its bytes as text), whatever refused it before."""
    kept = await by_id(key, uow=uow)
    if kept.outcome is not Outcome.QUARANTINED:
        raise Conflict("That message is not in quarantine.")
    try:
        message = parse(kept.raw)
    except MalformedMessage:
        message = InboundMessage(
            raw=kept.raw,
            message_id=kept.message_id,
            subject="Unreadable message, released from quarantine",
            text=kept.raw.decode("utf-8", errors="replace")[:20_000],
            sender_email=None,
            sender_name="",
            return_path=None,
            date=None,
            in_reply_to=(),
            references=(),
            auto_submitted=None,
            precedence=None,
            list_id=None,
            attachments=(),
        )
    if message.sender_email is None:
        # Nobody to name as the reporter: the incident desk the directory falls back to.
        desk = policy.directory.fallback[0].email if policy.directory.fallback else None
        if desk is None:
            raise Conflict("The message has no sender, and the directory names no fallback.")
        message = _as_from(message, str(desk))
    report = draft_of(message, policy=policy, rules=rules, now=now)
    [filed] = await reports.file_reports(
        [reports.Draft(report, Channel.EMAIL)], uow=uow, policy=policy, now=now
    )
    kept.outcome, kept.report_id = Outcome.RELEASED, filed.report.id
    kept.reason = f"{kept.reason} (released by {by})"[:2000]
    uow.session.add(kept)
    uow.record(
        "mail.released",
        subject=kept.id[:36],
        actor=by,
        at=now,
        data={"report": filed.report.reference},
    )
    return kept


def _as_from(message: InboundMessage, email: str) -> InboundMessage:
    """A message with no sender, filed in the name of the incident desk."""
    return replace(message, sender_email=email, sender_name=email)
