"""What happens to a notice that matters to others: the mail server refused it for good."""

from __future__ import annotations

from incidents.kernel.events import Event


class NoticeFailed(Event):
    """The mail server refused a notice for good; the obligation is escalated."""

    name = "notice.failed"
    notice_id: str
    obligation_id: str
    error: str
