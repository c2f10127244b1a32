"""The API's OpenAPI 3.1 document, from the models that validate requests and models of the answers.

A report's request body is `NewReport` itself, the model `parse_report` validates with, so the
document cannot promise a field the service refuses. The security cases' bodies are read field by
field in `incidents.web.cases_api`; their models here say what those handlers accept. Each JSON
answer has a model here, field for field what `incidents.web.presenters` (and
`incidents.policy.presentation.obligation_json`) and the error middleware write; they forbid
other fields, so a presenter that grows a field without the document fails the
schema-conformance tests (tests/integration/test_openapi.py, tests/integration/test_fuzz.py).

Served at GET /api/v1/openapi.json.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, models_json_schema

from incidents.cases.model import Phase
from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.obligations.model import ObligationStatus
from incidents.obligations.service import REASON_LENGTH
from incidents.people.permissions import Permission
from incidents.policy.schema import SEVERITIES, Severity
from incidents.reports.schemas import NewReport, Reporter
from incidents.web.access import requires

# A report's reference, as the path of GET /api/v1/reports/{reference}. ASCII digits: JSON
# Schema's \d is ASCII, Python's is not, and fuzzers read patterns with Python.
REFERENCE_PATTERN = r"^AI-[0-9]{4}-[0-9]{6,9}$"
# A security case's reference (incidents.cases.model.format_reference).
CASE_REFERENCE_PATTERN = r"^SEC-[0-9]{4}-[0-9]{6}$"
REF_TEMPLATE = "#/components/schemas/{model}"


def _no_default(schema: dict[str, Any]) -> None:
    """For a field that is left out rather than written as null: no `default: null` shown."""
    schema.pop("default", None)


class _Answer(BaseModel):
    """A JSON answer: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


class Citation(_Answer):
    """The passage of a policy or statute a rule encodes."""

    file: str = Field(description="the source document's file name")
    document: str = Field(description="the document's title, e.g. San José Policy 1.7.12")
    section: str = Field(description="the section heading the rule comes from")
    quote: str = Field(description="the sentence of the policy the rule encodes")
    link: str = Field(description="the passage on its pack's source page; empty if unknown")
    text: str = Field(description="document, section and quote in one line")


class Obligation(_Answer):
    """Someone who must be told of the report, by when, and why."""

    id: str
    role: Role
    recipients: list[str] = Field(description="the email addresses told")
    due_at: datetime = Field(description="the deadline, in UTC")
    due_at_local: datetime = Field(description="the same deadline in the organisation's zone")
    timezone: str = Field(description="the organisation's IANA time zone")
    status: ObligationStatus
    rule: str = Field(description="the first rule that obliges this role (pack/rule)")
    rules: list[str] = Field(description="every rule that obliges this role")
    citation: str = Field(description="the first rule's citation, in one line")
    citations: list[Citation]
    interpretation: str | None = Field(
        description="how the service read a vague word (such as 'promptly') for this deadline"
    )
    holidays: list[str] = Field(description="the days off that moved the deadline, in words")
    action: str | None = Field(description="what the people told must do, beyond reading")
    duty: str | None = Field(description="the duty a rule names; null for being told")
    late: bool = Field(description="the deadline had passed when the obligation opened")
    level: int = Field(description="0: named by the policy; n: the n-th escalation level")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    breached_at: datetime | None


class FiledReport(_Answer):
    """A report accepted: keep the receipt code, it is the only way to look the report up."""

    id: str
    reference: str = Field(pattern=REFERENCE_PATTERN, examples=["AI-2026-000001"])
    receipt_code: str = Field(
        description="shown once; with the reference it opens the report's status",
        examples=["ABCD-EFGH-JKMN"],
    )
    obligations: list[Obligation]


class ReportCase(_Answer):
    """The security case a report is in: shown only to security roles and auditors."""

    reference: str = Field(pattern=CASE_REFERENCE_PATTERN, examples=["SEC-2026-000001"])
    phase: Phase


class Report(_Answer):
    """A report as stored, with its obligations and where they stand."""

    id: str
    reference: str = Field(pattern=REFERENCE_PATTERN, examples=["AI-2026-000001"])
    kind: IncidentKind
    title: str
    description: str
    discovered_at: datetime
    reported_at: datetime
    channel: str = Field(description="how it came: web, api, email or event")
    source: str | None = Field(description="for a report published as an event: its source")
    reporter: Reporter
    ai_system: str
    ai_system_id: str | None = Field(
        description="the system in the inventory, once the report is linked to it"
    )
    data_categories: list[DataCategory]
    policies: list[str] = Field(description="the policy packs the report was planned under")
    obligations: list[Obligation]
    case: ReportCase | SkipJsonSchema[None] = Field(
        default=None,
        description="the security case the report is in; only for security roles and "
        "auditors, and left out when it is in none",
        json_schema_extra=_no_default,
    )


class ReportList(_Answer):
    """The newest reports the caller may see."""

    reports: list[Report]


# --- security cases -------------------------------------------------------------------------


class CasePageStep(_Answer):
    """A step of the on-call page: who was paged, by when they must answer, and whether they did."""

    id: str
    level: int = Field(description="0: the first page; n: the n-th step up the chain")
    role: Role
    recipients: list[str] = Field(description="the email addresses paged")
    due_at: datetime = Field(description="when the page goes up the chain unless answered, UTC")
    status: ObligationStatus
    acknowledged_by: str | None


class TaskCitation(_Answer):
    """The passage of a response plan a task comes from, as stored with the task."""

    file: str = Field(description="the source document's file name")
    section: str = Field(description="the section heading the task comes from")
    quote: str = Field(description="the sentence of the plan the task encodes")
    # Left out of tasks stored before citations carried them.
    document: str = Field(
        default="", description="the document's title", json_schema_extra=_no_default
    )
    link: str = Field(
        default="",
        description="the passage on its pack's source page; empty if unknown",
        json_schema_extra=_no_default,
    )


class CaseTask(_Answer):
    """Something the response plan requires (or suggests) be done, by whom and by when."""

    id: str
    title: str
    action: str | None = Field(description="what to do, in words")
    owner_role: Role
    status: Literal["open", "done", "overdue", "held"]
    due_at: datetime
    required: bool = Field(description="the case cannot close while a required task is open")
    done_by: str | None
    citations: list[TaskCitation]


class ClockHold(_Answer):
    """A clock on hold: its deadline waits, and moves on by the time held when released."""

    since: datetime
    reason: str | None
    by: str | None


class CaseClock(_Answer):
    """An obligation of the case's reports, the statutory breach-notice clocks among them."""

    id: str
    rule: str = Field(description="the rule that set it (pack/rule); empty if none")
    role: Role
    due_at: datetime
    status: ObligationStatus
    acknowledged_by: str | None
    held: ClockHold | SkipJsonSchema[None] = Field(
        default=None,
        description="present while the clock is on hold",
        json_schema_extra=_no_default,
    )


class Case(_Answer):
    """A security case: the reports it covers, its phase, its page, its tasks and its clocks."""

    id: str
    reference: str = Field(pattern=CASE_REFERENCE_PATTERN, examples=["SEC-2026-000001"])
    phase: Phase
    severity: Severity
    because: list[str] = Field(description="why that severity, in words")
    owner: str | None = Field(description="the person who took the case")
    owner_role: Role = Field(description="who owns the case until a person takes it")
    ai_system: str
    plans: list[str] = Field(description="the response plans' titles")
    rules: list[str] = Field(description="the rules that opened the case (pack/rule)")
    opened_at: datetime
    opened_by: str = Field(description="'system' (a rule) or the person who opened it")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    reports: list[Annotated[str, Field(pattern=REFERENCE_PATTERN)]] = Field(
        description="the references of the reports the case covers, first linked first"
    )
    page: list[CasePageStep] = Field(description="the on-call chain's steps, in order")
    tasks: list[CaseTask]
    clocks: list[CaseClock]


class CaseList(_Answer):
    """The cases, soonest open deadline first."""

    cases: list[Case]


class ReportReference(BaseModel):
    """A report to open a case for, or to add to one."""

    report: str = Field(description="the report's reference", examples=["AI-2026-000001"])


class PhaseTransition(BaseModel):
    """A move to another phase. The next phase needs no reason; skipping ahead or going back
    does; closing needs every required task done."""

    to: Phase
    reason: str | None = Field(default=None, max_length=2000)


class PersonalInformation(BaseModel):
    """Personal information was acquired: the active packs' statutory breach clocks open."""

    residents_affected: int | None = Field(
        default=None, ge=0, description="how many residents' information was acquired"
    )
    states: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None,
        description="the states whose residents are affected, as names or codes",
        examples=[["WI"]],
    )


class HoldReason(BaseModel):
    """Why a clock is held: a law-enforcement request to delay notice, a scope determination."""

    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


class Evidence(_Answer):
    """A file attached to a security case."""

    id: str
    filename: str
    content_type: str
    size: int = Field(description="in bytes")
    sha256: str = Field(description="the file's SHA-256, hex; checked again on download")
    added_by: str
    added_at: datetime
    note: str | None


class EvidenceList(_Answer):
    evidence: list[Evidence]


class SystemReview(_Answer):
    """A sunset review of an AI system."""

    id: str
    status: str = Field(description="open or decided")
    opened_by: str = Field(
        description="rule:pack/rule, threshold:pack, audit:pack, exception lapsed, or by hand: "
        "EMAIL: what opened it"
    )
    opened_at: datetime
    reason: str
    decider_role: str
    reports: int = Field(description="how many reports led to it")
    decision: str | None = Field(description="halt, exception, phase_out or continue, once decided")
    decided_by: str | None
    decided_at: datetime | None
    conditions: str | None = Field(
        description="an exception's conditions, or why the system continues"
    )
    expires_at: datetime | None = Field(description="when an exception lapses")


class AISystem(_Answer):
    """An AI system in the inventory."""

    id: str
    name: str
    status: str = Field(
        description="active, unregistered, under_review, halted, excepted, phasing_out, retired"
    )
    department: str
    vendor: str
    purpose: str
    public_facing: bool
    pilot: bool
    data_categories: list[str]
    fact_sheet: dict[str, str] = Field(description="the vendor's AI Fact Sheet answers")
    approved_by: str | None
    approved_at: datetime | None
    approval_rule: str | None = Field(description="the pack rule it was approved under")
    next_review_at: datetime | None = Field(description="when its periodic audit falls due")
    reviews: list[SystemReview]


class AISystemList(_Answer):
    systems: list[AISystem]


class ApprovalRequestAnswer(_Answer):
    """A department's request to use a new AI system."""

    id: str
    name: str
    department: str
    vendor: str
    purpose: str
    data_categories: list[str]
    public_facing: bool
    pilot: bool
    fact_sheet: dict[str, str]
    requested_by: str
    requested_at: datetime
    approver_role: str
    status: str = Field(description="pending, approved or refused")
    decided_by: str | None
    decided_at: datetime | None
    reasons: str | None
    system_id: str | None = Field(description="the system in the inventory, once approved")


class ApprovalRequestList(_Answer):
    requests: list[ApprovalRequestAnswer]


class NewApprovalRequest(BaseModel):
    """What a department asks to use."""

    name: str = Field(min_length=1, max_length=200)
    department: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=2000)
    vendor: str | None = Field(default=None, max_length=200)
    data_categories: list[DataCategory] = Field(default_factory=list)
    public_facing: bool = False
    pilot: bool = False
    fact_sheet: dict[str, str] = Field(
        default_factory=dict,
        description="AI Fact Sheet answers: intended_use, model, training_data, performance, "
        "bias_testing, human_oversight, data_retention",
    )


class RequestDecision(BaseModel):
    """approve; or refuse with reasons."""

    decision: str = Field(pattern="^(approve|refuse)$")
    reasons: str | None = None


class ReviewByHand(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Milestone(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    due_on: str = Field(description="a date, e.g. 2027-03-31", examples=["2027-03-31"])
    owner_role: Role


class PhaseOutPlan(BaseModel):
    data_ownership: str
    data_access: str
    portability: str
    impact_services: str
    impact_users: str
    impact_residents: str
    milestones: list[Milestone] = Field(min_length=1)


class Decision(BaseModel):
    """halt; exception with conditions and expires_on; phase_out with its plan; or continue
    with reasons."""

    decision: str = Field(pattern="^(halt|exception|phase_out|continue)$")
    conditions: str | None = None
    reasons: str | None = None
    expires_on: str | None = Field(default=None, description="a date, e.g. 2027-03-31")
    plan: PhaseOutPlan | None = None


class PublishedReport(BaseModel):
    """A CloudEvent 1.0 in structured JSON mode whose data is a report."""

    specversion: str = Field(pattern="^1\\.0$")
    id: str = Field(min_length=1, description="unique for its source: an event is filed once")
    source: str = Field(min_length=1, examples=["urn:city:ai-monitor"])
    type: str = Field(
        pattern="report\\.submitted\\.v1$", examples=["gov.city.ai-monitor.report.submitted.v1"]
    )
    datacontenttype: str | None = None
    time: str | None = None
    data: NewReport


class Classification(BaseModel):
    """The kind a triager gives a report that came without one."""

    kind: IncidentKind
    data_categories: list[DataCategory] = Field(default_factory=list)
    ai_system: str | None = Field(
        default=None, max_length=200, description="the system, if the report named none"
    )


class AlreadyFiled(_Answer):
    """The event was filed before: the report it filed."""

    id: str
    reference: str = Field(pattern=REFERENCE_PATTERN)
    duplicate: bool


class Error(_Answer):
    """A refusal, in words."""

    error: str


class FieldErrors(_Answer):
    """A request refused for its content: one plain message per field at fault."""

    error: str
    fields: dict[str, str] = Field(
        description="field (dotted for nested ones, e.g. reporter.email, or body) -> message"
    )


def _json(schema: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=schema)}}},
        **extra,
    }


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
_MISDIRECTED = _json("Error", "The Host header names a host this service does not answer to.")
_UNAUTHORIZED = _json(
    "Error",
    "No token, or one that is revoked or mistyped.",
    headers={
        "WWW-Authenticate": {
            "description": "Bearer",
            "required": True,
            "schema": {"type": "string"},
        }
    },
)
_SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
_TOO_MANY = _json("Error", "Too many requests from this client; wait.", headers=_RETRY_AFTER)


# --- security cases: security roles work them, auditors read them, anyone else gets 404 ------

_NO_CASE = (
    "No security case has that reference, or the caller may not see security cases: to "
    "anyone but security roles and auditors (reading), a case does not exist."
)
_CASE_REFERENCE = {
    "name": "reference",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": CASE_REFERENCE_PATTERN},
    "example": "SEC-2026-000001",
}


def _id_in_path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _case_operation(
    operation_id: str,
    summary: str,
    description: str,
    *,
    parameters: list[dict[str, Any]],
    answer: tuple[str, dict[str, Any]] | None = None,
    body: str | None = None,
    bad_request: str | None = None,
    not_found: str = _NO_CASE,
    conflict: str | None = None,
) -> dict[str, Any]:
    """An operation on security cases: bearer only, 404 for anyone who may not see cases, and,
    with a body, the refusals of `json_body` and the handler's field checks."""
    status, success = answer or ("200", _json("Case", "The case, as it now stands."))
    responses: dict[str, Any] = {
        status: success,
        "401": _UNAUTHORIZED,
        "404": _json("Error", not_found),
        "421": _MISDIRECTED,
    }
    if body is not None:
        bad_request = (
            bad_request or "The body is not a JSON object, or a field is missing or wrong."
        )
        responses["413"] = _json("Error", "The body is larger than the service accepts.")
        responses["415"] = _json("Error", "The body was not sent as application/json.")
    if bad_request is not None:
        responses["400"] = _json("FieldErrors", f"{bad_request} The fields to fix, each with why.")
    if conflict is not None:
        responses["409"] = _json("Error", conflict)
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "security": _SIGNED_IN,
        "parameters": parameters,
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=body)}}},
        }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _case_paths() -> dict[str, Any]:
    case = "/api/v1/cases/{reference}"
    task_id = _id_in_path("task_id", "a task's id, from the case's `tasks`")
    clock_id = _id_in_path("clock_id", "a clock's id, from the case's `clocks` (or `tasks`)")
    return {
        "/api/v1/cases": {
            "get": _case_operation(
                "listCases",
                "The security cases",
                "The cases (up to 200, the newest), soonest open deadline first; for security "
                "roles and auditors.",
                parameters=[
                    {
                        "name": "phase",
                        "in": "query",
                        "required": False,
                        "description": "only cases in this phase",
                        "schema": {"$ref": REF_TEMPLATE.format(model="Phase")},
                    },
                    {
                        "name": "severity",
                        "in": "query",
                        "required": False,
                        "description": "only cases of this severity",
                        "schema": {"type": "string", "enum": list(SEVERITIES)},
                    },
                    {
                        "name": "owner",
                        "in": "query",
                        "required": False,
                        "description": "only cases taken by this person (an email address)",
                        "schema": {"type": "string"},
                    },
                ],
                answer=("200", _json("CaseList", "The cases, soonest open deadline first.")),
                bad_request="A filter has a value it cannot take, such as a `phase` that is none.",
                not_found="The caller may not see security cases.",
            ),
            "post": _case_operation(
                "openCase",
                "Open a case for a report",
                "Opens a security case for a report by hand, under the active packs' response "
                "plans; when the report is already in a case, answers with that case. For "
                "security roles.",
                parameters=[],
                body="ReportReference",
                answer=(
                    "201",
                    _json(
                        "Case",
                        "The report's case: opened now, or the one it was already in.",
                        headers={
                            "Location": {
                                "description": "the case's address in this API",
                                "required": True,
                                "schema": {"type": "string"},
                            }
                        },
                    ),
                ),
                bad_request="The body is not a JSON object, `report` is missing, or no active "
                "pack has a response plan to open a case under.",
                not_found="No report has that reference, or the caller may not work security "
                "cases.",
            ),
        },
        case: {
            "get": _case_operation(
                "getCase",
                "A security case",
                "The case with its reports, on-call page, tasks and clocks; for security roles "
                "and auditors.",
                parameters=[_CASE_REFERENCE],
            )
        },
        f"{case}/reports": {
            "post": _case_operation(
                "linkReportToCase",
                "Add a report to a case",
                "Adds a further report to an open case; a report already in it changes nothing.",
                parameters=[_CASE_REFERENCE],
                body="ReportReference",
                not_found=f"No report has that reference. {_NO_CASE}",
                conflict="The case is closed, or the report is already in another case.",
            )
        },
        f"{case}/acknowledge": {
            "post": _case_operation(
                "acknowledgeCase",
                "Take a case",
                "The caller takes the case: the on-call page stops for everyone, and the record "
                "says who. A second time changes nothing. For security roles.",
                parameters=[_CASE_REFERENCE],
            )
        },
        f"{case}/transitions": {
            "post": _case_operation(
                "moveCase",
                "Move a case to another phase",
                "The next phase needs no reason; skipping ahead or going back needs one; "
                "closing needs every required task done.",
                parameters=[_CASE_REFERENCE],
                body="PhaseTransition",
                conflict="The move is not allowed: the case is closed or already in that phase, "
                "the move skips a phase or goes back without a reason, or required tasks are "
                "open.",
            )
        },
        f"{case}/tasks/{{task_id}}/complete": {
            "post": _case_operation(
                "completeCaseTask",
                "Mark a task done",
                "Records who did the task; its clocks stop. A second time changes nothing.",
                parameters=[_CASE_REFERENCE, task_id],
                not_found=f"The case has no task with that id. {_NO_CASE}",
            )
        },
        f"{case}/personal-information": {
            "post": _case_operation(
                "confirmPersonalInformation",
                "Personal information was acquired",
                "Records that personal information was acquired, on every report of the case: "
                "the active packs' statutory breach-notice clocks open (they show among the "
                "case's clocks once the service has planned them).",
                parameters=[_CASE_REFERENCE],
                body="PersonalInformation",
            )
        },
        f"{case}/clocks/{{clock_id}}/hold": {
            "post": _case_operation(
                "holdCaseClock",
                "Hold a clock",
                "Stops a clock (a law-enforcement request to delay notice, a scope "
                "determination): its deadline waits, and on release moves by the time held.",
                parameters=[_CASE_REFERENCE, clock_id],
                body="HoldReason",
                not_found=f"The case has no clock with that id. {_NO_CASE}",
                conflict="The clock is already done, or already on hold.",
            )
        },
        f"{case}/clocks/{{clock_id}}/release": {
            "post": _case_operation(
                "releaseCaseClock",
                "Release a held clock",
                "Ends the hold: the deadline and waiting reminders move on by the time held.",
                parameters=[_CASE_REFERENCE, clock_id],
                not_found=f"The case has no clock with that id. {_NO_CASE}",
                conflict="The clock is not on hold.",
            )
        },
        f"{case}/evidence": {
            "get": _case_operation(
                "listCaseEvidence",
                "The files attached to the case",
                "Each file's name, type, size and SHA-256, who added it and when. Download one "
                "at /cases/{reference}/evidence/{id} (its hash is checked again first).",
                parameters=[_CASE_REFERENCE],
                answer=("200", _json("EvidenceList", "The files, oldest first.")),
            ),
            "post": _evidence_upload(),
        },
    }


def _system_paths() -> dict[str, Any]:
    system_id = _id_in_path("system_id", "an AI system's id, from GET /api/v1/systems")
    review_id = _id_in_path("review_id", "a review's id, from its system's `reviews`")
    not_found = "No AI system has that id."
    signed_in: dict[str, Any] = {"401": _UNAUTHORIZED, "421": _MISDIRECTED}
    decision = _case_operation(
        "decideReview",
        "Decide on a system under review",
        "Halt it, grant an express exception (conditions and an expiry, which reopens the "
        "review when it lapses), or approve a phase-out plan (every section the policy asks, "
        "and milestones, which become clocks). Only the review's decider (the CIO) may.",
        parameters=[review_id],
        answer=("200", _json("AISystem", "The system, as it now stands.")),
        body="Decision",
        not_found="No review you may decide has that id.",
        conflict="The review is already decided.",
    )
    decision["responses"]["403"] = _json("Error", "Only the deciders (the CIO) decide.")
    decision["responses"]["422"] = _json(
        "FieldErrors", "The phase-out plan misses these sections, each with what to add."
    )
    decision["responses"] = dict(sorted(decision["responses"].items()))
    request_id = _id_in_path("request_id", "a request's id, from POST /api/v1/approval-requests")
    by_hand = _case_operation(
        "openReview",
        "Open a review by hand",
        "Opens a review of the system, with the reason given; the policy's decider is told, on "
        "a clock. A system with an open review keeps that one.",
        parameters=[system_id],
        answer=("201", _json("AISystem", "The system, with the review.")),
        body="ReviewByHand",
        not_found=not_found,
        conflict="No policy in force names a decider for this system, or it is retired.",
    )
    by_hand["responses"]["403"] = _json("Error", "Only the deciders open reviews by hand.")
    asking = _case_operation(
        "requestApproval",
        "Ask to use a new AI system",
        "A department asks; the approver the policy names (the IT Director, the Chief of "
        "Police, the CIO...) is told, on a clock, and approves or refuses with reasons.",
        parameters=[],
        answer=("201", _json("ApprovalRequestAnswer", "The request, pending.")),
        body="NewApprovalRequest",
        not_found="Never: any signed-in person may ask.",
        conflict="The system is already approved, or no policy names an approver.",
    )
    del asking["responses"]["404"]
    approving = _case_operation(
        "decideApprovalRequest",
        "Approve or refuse a request",
        "Approval puts the system in the inventory as active (and schedules its audits where "
        "the policy asks); refusing needs reasons. Only the approver the policy names may.",
        parameters=[request_id],
        answer=("200", _json("ApprovalRequestAnswer", "The request, decided.")),
        body="RequestDecision",
        not_found="No approval request you may decide has that id.",
        conflict="The request is already decided.",
    )
    approving["responses"]["403"] = _json("Error", "Only approvers and deciders decide.")
    for operation in (by_hand, asking, approving):
        operation["responses"] = dict(sorted(operation["responses"].items()))
    return {
        "/api/v1/systems": {
            "get": {
                "operationId": "listSystems",
                "summary": "The AI systems",
                "description": "Every AI system the service knows, with its sunset reviews.",
                "security": _SIGNED_IN,
                "responses": {"200": _json("AISystemList", "The systems."), **signed_in},
            }
        },
        "/api/v1/systems/{system_id}": {
            "get": {
                "operationId": "getSystem",
                "summary": "One AI system",
                "description": "The system, its status and its reviews.",
                "security": _SIGNED_IN,
                "parameters": [system_id],
                "responses": {
                    "200": _json("AISystem", "The system."),
                    "404": _json("Error", not_found),
                    **signed_in,
                },
            }
        },
        "/api/v1/reviews/{review_id}/decision": {"post": decision},
        "/api/v1/systems/{system_id}/reviews": {"post": by_hand},
        "/api/v1/approval-requests": {
            "get": {
                "operationId": "listApprovalRequests",
                "summary": "Requests waiting for your approval",
                "description": "Pending requests to use a new AI system that the caller "
                "approves, oldest first.",
                "security": _SIGNED_IN,
                "responses": {
                    "200": _json("ApprovalRequestList", "The requests."),
                    "403": _json("Error", "Only approvers and deciders see requests."),
                    **signed_in,
                },
            },
            "post": asking,
        },
        "/api/v1/approval-requests/{request_id}/decision": {"post": approving},
    }


def _evidence_upload() -> dict[str, Any]:
    """Adding a file: the body is the file itself, not JSON."""
    operation = _case_operation(
        "addCaseEvidence",
        "Attach a file to the case",
        "The body is the file (up to 10 MiB), Content-Type its type: PDF, PNG, JPEG, plain "
        "text, CSV, JSON, an email (message/rfc822) or ZIP; PDF, PNG, JPEG and ZIP must be what "
        "their type says. Kept with its SHA-256; on the record.",
        parameters=[
            _CASE_REFERENCE,
            {
                "name": "filename",
                "in": "query",
                "required": True,
                "description": "the file's name",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            },
            {
                "name": "note",
                "in": "query",
                "required": False,
                "description": "what the file is, in a few words",
                "schema": {"type": "string", "maxLength": 500},
            },
        ],
        answer=("201", _json("Evidence", "Attached.")),
        bad_request="The file, its name, type or note was refused.",
        conflict="The case is closed.",
    )
    operation["requestBody"] = {
        "required": True,
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
    operation["responses"]["413"] = _json("Error", "The file is larger than 10 MiB.")
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/reports": {
            "post": {
                "operationId": "fileReport",
                "summary": "File a report",
                "description": (
                    "Files a report, decides under the active policies who must be told and "
                    "by when, and answers with the obligations. With an Idempotency-Key, "
                    "sending the same body again answers as the first time did, and files "
                    "nothing more."
                ),
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": (
                            "a value of the client's choosing, new for each report, such as a "
                            "UUID: for 24 hours, the same key with the same body returns the "
                            "first answer and files nothing; with another body, 422"
                        ),
                        # 1 to 255 visible ASCII characters (incidents.web.api._checked_key)
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 255,
                            "pattern": "^[ -~]+$",
                        },
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": REF_TEMPLATE.format(model="NewReport")}
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        "FiledReport",
                        "Filed.",
                        headers={
                            "Location": {
                                "description": "the report's address in this API",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                            "Idempotent-Replayed": {
                                "description": "present when this is the first answer again, "
                                "for a retry with the same Idempotency-Key",
                                "required": False,
                                "schema": {"type": "string", "enum": ["true"]},
                            },
                        },
                    ),
                    "400": _json(
                        "FieldErrors",
                        "Not a report, or not a usable Idempotency-Key: the fields to fix, "
                        "each with why.",
                    ),
                    "401": _json(
                        "Error",
                        "A token was sent that is revoked or mistyped (filing needs none).",
                        headers=_UNAUTHORIZED["headers"],
                    ),
                    "409": _json(
                        "Error", "A request with this Idempotency-Key is still being processed."
                    ),
                    "413": _json("Error", "The body is larger than the service accepts."),
                    "415": _json("Error", "The body was not sent as application/json."),
                    "421": _MISDIRECTED,
                    "422": _json(
                        "Error", "This Idempotency-Key was already used with another body."
                    ),
                    "429": _TOO_MANY,
                },
            },
            "get": {
                "operationId": "listReports",
                "summary": "The reports you may see",
                "description": (
                    "The newest 100 reports the caller filed, was named for by a policy, or, "
                    "for auditors, all."
                ),
                "security": _SIGNED_IN,
                "responses": {
                    "200": _json("ReportList", "The reports, newest first."),
                    "401": _UNAUTHORIZED,
                    "421": _MISDIRECTED,
                    "429": _TOO_MANY,
                },
            },
        },
        "/api/v1/reports/{reference}": {
            "get": {
                "operationId": "getReport",
                "summary": "A report and where its obligations stand",
                "description": (
                    "For whoever holds the receipt code given when the report was filed, or, "
                    "with a token, for its reporter, the people a policy named for it and "
                    "auditors. A wrong reference, a wrong code and a report the caller may not "
                    "see all get the same 404. For security roles and auditors, the report's "
                    "security case, if it is in one."
                ),
                "security": [{}, *_SIGNED_IN],
                "parameters": [
                    {
                        "name": "reference",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": REFERENCE_PATTERN},
                        "example": "AI-2026-000001",
                    },
                    {
                        "name": "receipt_code",
                        "in": "query",
                        "required": False,
                        "description": "the receipt code given when the report was filed "
                        "(not needed with a token)",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json("Report", "The report."),
                    "401": _UNAUTHORIZED,
                    "404": _json("Error", "No report with that reference and receipt code."),
                    "421": _MISDIRECTED,
                    "429": _TOO_MANY,
                },
            }
        },
        "/api/v1/obligations/{obligation_id}/acknowledge": {
            "post": {
                "operationId": "acknowledgeObligation",
                "summary": "Acknowledge one of your own obligations",
                "description": (
                    "Records that the caller received the notice; only an obligation "
                    "addressed to the caller, any other gets 404. A second time changes nothing."
                ),
                "security": _SIGNED_IN,
                "parameters": [
                    {
                        "name": "obligation_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json("Obligation", "Acknowledged."),
                    "401": _UNAUTHORIZED,
                    "404": _json("Error", "No obligation of the caller's has that id."),
                    "421": _MISDIRECTED,
                    "429": _TOO_MANY,
                },
            }
        },
        "/api/v1/reports/{reference}/classification": {
            "post": {
                "operationId": "classifyReport",
                "summary": "Classify a report that came without a kind",
                "description": (
                    "For a person the report's obligations name (its triager): a report that "
                    "came by email has no kind, so the pack's triage rule applies; its kind "
                    "makes the rules for that kind apply, their deadlines counted from the "
                    "original discovery."
                ),
                "security": _SIGNED_IN,
                "parameters": [
                    {
                        "name": "reference",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": REFERENCE_PATTERN},
                        "example": "AI-2026-000001",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": REF_TEMPLATE.format(model="Classification")}
                        }
                    },
                },
                "responses": {
                    "200": _json("Report", "The report, with its new obligations."),
                    "400": _json("FieldErrors", "The fields to fix, each with why."),
                    "401": _UNAUTHORIZED,
                    "404": _json("Error", "No report you may classify has that reference."),
                    "409": _json("Error", "The report is already classified."),
                    "413": _json("Error", "The body is larger than the service accepts."),
                    "415": _json("Error", "The body was not sent as application/json."),
                    "421": _MISDIRECTED,
                },
            }
        },
        "/api/v1/events": {
            "post": {
                "operationId": "publishReport",
                "summary": "Publish a report as an event",
                "description": (
                    "For other systems (AI monitoring tools): a CloudEvent in structured JSON "
                    "mode whose type ends in report.submitted.v1 and whose data is a report, as "
                    "POST /api/v1/reports takes it. Filed once per event (its source and id): "
                    "the same event again answers 200 with the report it filed."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/cloudevents+json": {
                            "schema": {"$ref": REF_TEMPLATE.format(model="PublishedReport")}
                        },
                        "application/json": {
                            "schema": {"$ref": REF_TEMPLATE.format(model="PublishedReport")}
                        },
                    },
                },
                "responses": {
                    "200": _json("AlreadyFiled", "Filed before, by this event."),
                    "201": _json("FiledReport", "Filed."),
                    "400": _json(
                        "FieldErrors", "Not a CloudEvent, or its data is not a report: what to fix."
                    ),
                    "401": _json("Error", "A token was sent that is revoked or mistyped."),
                    "409": _json("Error", "The same event is being filed by another request."),
                    "413": _json("Error", "The body is larger than the service accepts."),
                    "415": _json("Error", "The body was not sent as JSON."),
                    "421": _MISDIRECTED,
                    "429": _TOO_MANY,
                },
            }
        },
        **_case_paths(),
        **_system_paths(),
    }


@functools.cache
def _components() -> dict[str, Any]:
    """Every model's schema, with pydantic's `$defs` hoisted to components/schemas."""
    _, schemas = models_json_schema(
        [
            (NewReport, "validation"),
            (ReportReference, "validation"),
            (PhaseTransition, "validation"),
            (PersonalInformation, "validation"),
            (HoldReason, "validation"),
            (FiledReport, "serialization"),
            (Report, "serialization"),
            (ReportList, "serialization"),
            (Obligation, "serialization"),
            (Case, "serialization"),
            (CaseList, "serialization"),
            (Evidence, "serialization"),
            (AISystem, "serialization"),
            (AISystemList, "serialization"),
            (PublishedReport, "validation"),
            (Classification, "validation"),
            (AlreadyFiled, "serialization"),
            (ApprovalRequestAnswer, "serialization"),
            (ApprovalRequestList, "serialization"),
            (NewApprovalRequest, "validation"),
            (RequestDecision, "validation"),
            (ReviewByHand, "validation"),
            (Decision, "validation"),
            (EvidenceList, "serialization"),
            (Error, "serialization"),
            (FieldErrors, "serialization"),
        ],
        ref_template=REF_TEMPLATE,
    )
    defs: dict[str, Any] = schemas["$defs"]
    return defs


def build() -> dict[str, Any]:
    """The document, as a fresh dict."""
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "AI incident reporting",
            "version": "1",
            "summary": "Report harm or malfunction caused by an AI system; see who must be told.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": _paths(),
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `incidents tokens create EMAIL --name NAME`",
                }
            },
        },
    }
    copy: dict[str, Any] = json.loads(json.dumps(document))
    return copy


@functools.cache
def _body() -> bytes:
    return json.dumps(build()).encode()


@requires(Permission.READ_API_DESCRIPTION)
async def document(request: web.Request) -> web.Response:
    return web.Response(body=_body(), content_type="application/json")
