"""What happens to mail that comes in. Each is an event and an audit entry."""

from __future__ import annotations

from incidents.kernel.events import Event


class MailAnswerDue(Event):
    """Someone who wrote in is to be answered: the notifier renders the answer."""

    name = "mail.answer_due"
    unrecorded = frozenset({"receipt_code"})
    mail_id: str
    receipt_code: str = ""  # so a reporter who is not signed in can look the report up
    report_id: str
    to: str
    in_reply_to: str
    references: list[str]
    threaded: bool  # a reply added to a report, rather than a new report


class MailQuarantined(Event):
    name = "mail.quarantined"
    mail_id: str
    reason: str


class MailReplyAdded(Event):
    """A reply was added to a report's timeline, for the people a policy named."""

    name = "mail.reply_added"
    mail_id: str
    report_id: str
    sender: str
    subject: str
    text: str
