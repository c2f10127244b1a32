"""What callers send and get back: the report a member of staff files, and plain field errors."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from incidents.kernel.errors import InvalidInput
from incidents.kernel.vocabulary import DataCategory, IncidentKind

# No report is older than the policies it falls under; a date before this is a typing slip.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Control characters other than tab and line breaks (NUL among them): nobody types them, and
# PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters that show nothing: spaces, format characters (zero-width space, joiners, bidi
# marks), controls, unassigned and separators.
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me"})


def _visible(text: str) -> str:
    if _CONTROL.search(text):
        raise PydanticCustomError(
            "control_characters", "Remove the control characters (such as NUL) from this text."
        )
    if not any(unicodedata.category(c) not in _INVISIBLE for c in text):
        raise PydanticCustomError(
            "invisible", "Write something here: this has no visible characters."
        )
    return text


def _one_line(text: str) -> str:
    return " ".join(_visible(text).split())


def _plausible(moment: datetime) -> datetime:
    # Checked on the year first: comparing or converting year 1 or 9999 with an offset can
    # overflow.
    if moment.year < EARLIEST.year or moment.year > 2100 or moment < EARLIEST:
        raise PydanticCustomError(
            "implausible_date",
            "Give a date from the year 2000 on, and not in the future; check the year.",
        )
    return moment


Line = Annotated[str, AfterValidator(_one_line)]  # one line of visible text
Text = Annotated[str, AfterValidator(_visible)]  # visible text, line breaks kept
When = Annotated[AwareDatetime, AfterValidator(_plausible)]


class Reporter(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Line = Field(min_length=1, max_length=200)
    email: EmailStr
    department: Line = Field(min_length=1, max_length=200)


# What a report names as its system when the reporter named none (a report by email that names
# no system the inventory knows): no system is linked, and no review counts it.
NOT_NAMED = "Not named (reported by email)"


class NewReport(BaseModel):
    """A report as filed through the form, the API or email."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: IncidentKind
    title: Line = Field(min_length=3, max_length=200)
    description: Text = Field(min_length=1, max_length=20_000)
    discovered_at: When
    reporter: Reporter
    ai_system: Line | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the AI system's name; or give ai_system_id",
    )
    ai_system_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f-]{36}$",
        description="the AI system's id in the inventory (GET /api/v1/systems)",
    )
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=10)


def parse_report(body: Any) -> NewReport:
    """Validate a report, or raise InvalidInput with one plain message per field."""
    if not isinstance(body, dict):
        raise InvalidInput({"body": "Send a JSON object with the report's fields."})
    # The system is named, or given by its id in the inventory: one of the two is required.
    name, system_id = body.get("ai_system"), body.get("ai_system_id")
    named = (isinstance(name, str) and name.strip()) or system_id is not None
    errors: dict[str, str] = {}
    try:
        report = NewReport.model_validate(body)
    except ValidationError as exc:
        errors = field_errors(exc)
    if not named:
        errors["ai_system"] = "This is required."
    if errors:
        raise InvalidInput(errors)
    return report


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
