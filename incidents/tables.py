"""Every table of the service, so that `SQLModel.metadata` knows them all.

For the schema as a whole: migrations compare against it and the embedded default creates it.
A new concept's model is added here.
"""

from sqlmodel import SQLModel

from incidents.cases.evidence import CaseEvidence
from incidents.cases.model import Case, CaseReport
from incidents.intake.model import InboundMail
from incidents.kernel.eventlog import ConsumerPosition, DeadLetter, EventRow, HandledEvent
from incidents.kernel.throttle import RateWindow
from incidents.notices.model import Notice
from incidents.obligations.model import ClockRow, Obligation
from incidents.people.model import Account, AccountLink, ApiToken, SignInSession
from incidents.record.model import AuditEntry
from incidents.reports.model import Report
from incidents.systems.model import AISystem, ApprovalRequest, Review

metadata = SQLModel.metadata

__all__ = [
    "AISystem",
    "InboundMail",
    "ApprovalRequest",
    "Account",
    "AccountLink",
    "ApiToken",
    "AuditEntry",
    "Case",
    "CaseEvidence",
    "CaseReport",
    "ClockRow",
    "ConsumerPosition",
    "DeadLetter",
    "EventRow",
    "HandledEvent",
    "Notice",
    "Obligation",
    "RateWindow",
    "Report",
    "Review",
    "SignInSession",
    "metadata",
]
