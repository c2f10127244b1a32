"""What callers send and get back: the report a member of staff files, and plain field errors."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from incidents.kernel.errors import InvalidInput
from incidents.kernel.vocabulary import DataCategory, IncidentKind


class Reporter(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    department: str = Field(min_length=1, max_length=200)


class NewReport(BaseModel):
    """A report as filed through the form, the API or email."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: IncidentKind
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    discovered_at: AwareDatetime
    reporter: Reporter
    ai_system: str = Field(min_length=1, max_length=200)
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=10)


def parse_report(body: Any) -> NewReport:
    """Validate a report, or raise InvalidInput with one plain message per field."""
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a JSON object with the report's fields."})
    try:
        return NewReport.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"] if not isinstance(p, int)) or "body"
        errors.setdefault(loc, _plain(e))
    return errors


_KINDS = ", ".join(k.value for k in IncidentKind)
_CATEGORIES = ", ".join(c.value for c in DataCategory)


def _plain(e: Any) -> str:
    kind, ctx, field = e["type"], e.get("ctx") or {}, str(e["loc"][-1]) if e["loc"] else ""
    if kind == "missing":
        return "This is required."
    if kind == "extra_forbidden":
        return "This field is not part of a report; remove it."
    if kind == "enum" and field == "kind":
        return f"Choose one of: {_KINDS}."
    if kind == "enum":
        return f"Use only these data categories: {_CATEGORIES}."
    if kind == "timezone_aware":
        return "Add the time zone offset, e.g. 2026-11-24T09:30:00-08:00."
    if kind.startswith("datetime"):
        return "Give a date and time such as 2026-11-24T09:30:00-08:00."
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "This is required." if n == 1 else f"Write at least {n} characters."
    if kind == "string_too_long":
        return f"Shorten this to {ctx.get('max_length')} characters or fewer."
    if kind == "value_error" and field == "email":
        return "Give an email address such as name@city.gov."
    if kind in ("string_type", "model_type", "model_attributes_type", "list_type"):
        return "This has the wrong type; see the API documentation for the expected form."
    return str(e["msg"])
