"""The API's OpenAPI 3.1 document, from the models that validate requests and models of the answers.

The request body is `NewReport` itself, the model `parse_report` validates with, so the document
cannot promise a field the service refuses. Each JSON answer has a model here, field for field
what `incidents.web.presenters` (and `incidents.policy.presentation.obligation_json`) and the
error middleware write; they forbid other fields, so a presenter that grows a field without the
document fails the schema-conformance fuzz test (tests/integration/test_fuzz.py).

Served at GET /api/v1/openapi.json.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.obligations.model import ObligationStatus
from incidents.people.permissions import Permission
from incidents.reports.schemas import NewReport, Reporter
from incidents.web.access import requires

# A report's reference, as the path of GET /api/v1/reports/{reference}. ASCII digits: JSON
# Schema's \d is ASCII, Python's is not, and fuzzers read patterns with Python.
REFERENCE_PATTERN = r"^AI-[0-9]{4}-[0-9]{6,9}$"
REF_TEMPLATE = "#/components/schemas/{model}"


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


class Report(_Answer):
    """A report as stored, with its obligations and where they stand."""

    id: str
    reference: str = Field(pattern=REFERENCE_PATTERN, examples=["AI-2026-000001"])
    kind: IncidentKind
    title: str
    description: str
    discovered_at: datetime
    reported_at: datetime
    reporter: Reporter
    ai_system: str
    data_categories: list[DataCategory]
    policies: list[str] = Field(description="the policy packs the report was planned under")
    obligations: list[Obligation]


class ReportList(_Answer):
    """The newest reports the caller may see."""

    reports: list[Report]


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
                    "see all get the same 404."
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
    }


@functools.cache
def _components() -> dict[str, Any]:
    """Every model's schema, with pydantic's `$defs` hoisted to components/schemas."""
    _, schemas = models_json_schema(
        [
            (NewReport, "validation"),
            (FiledReport, "serialization"),
            (Report, "serialization"),
            (ReportList, "serialization"),
            (Obligation, "serialization"),
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
