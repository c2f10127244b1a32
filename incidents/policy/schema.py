"""The schema of a policy pack: what a city administrator writes in a pack file.

A rule says when it applies (incident kind, data categories, department, AI-system attributes), who
must be told (roles, resolved through the directory), by when (an elapsed duration, a business-day
rule, or a named interpretation of a word like "immediately"), and what follows (reminders, an
escalation chain on breach, a security case, a sunset review). Every rule cites the seed policy.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt "reminder:" must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Citation(_Strict):
    file: str = Field(
        description="the source document: a seed policy file (004_cdd0e18fc1bc8463.txt) or a "
        "statute named in incidents/policy/sources/documents.yaml"
    )
    section: str = Field(min_length=1, description="the section heading the rule comes from")
    quote: str = Field(min_length=1, description="the sentence of the policy the rule encodes")
    # Filled in when the pack is loaded, never written in a pack: the document's title (San José
    # Policy 1.7.12) and the address of the quoted passage on the pack's source page.
    document: str = ""
    link: str = ""

    def __str__(self) -> str:
        return f"{self.document or self.file}, “{self.section}”: “{self.quote}”"


class Deadline(_Strict):
    """By when: exactly one of `after`, `business_days` or `interpretation`."""

    after: timedelta | None = Field(
        default=None, description="real elapsed time, ISO 8601 duration such as PT24H"
    )
    business_days: int | None = Field(
        default=None, ge=0, description="end of business on the Nth business day after the start"
    )
    interpretation: str | None = Field(
        default=None, description="the name of an entry in the pack's interpretations"
    )
    from_: Literal["discovery", "report"] = Field(
        default="discovery", alias="from", description="what the clock counts from"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Deadline:
        given = [x for x in (self.after, self.business_days, self.interpretation) if x is not None]
        if len(given) != 1:
            raise ValueError(
                "a deadline needs exactly one of 'after' (e.g. PT24H), "
                "'business_days' (e.g. 1) or 'interpretation' (e.g. immediately)"
            )
        if self.after is not None and self.after <= timedelta(0):
            raise ValueError("'after' must be a positive duration such as PT24H")
        return self


class Interpretation(_Strict):
    """A vague word of the policy ("immediately", "promptly") made into an explicit number."""

    deadline: Deadline
    note: str = Field(min_length=1, description="why this number, shown beside the deadline")

    @field_validator("deadline")
    @classmethod
    def _not_nested(cls, v: Deadline) -> Deadline:
        if v.interpretation is not None:
            raise ValueError("an interpretation must give 'after' or 'business_days' itself")
        return v


class ObservedDay(_Strict):
    """A day the organisation closes that its public calendar lacks."""

    name: str = Field(min_length=1, description="e.g. Day after Thanksgiving")
    on: str = Field(
        pattern=r"^(\d{4}-)?\d{2}-\d{2}$",
        description="MM-DD every year (12-24), or YYYY-MM-DD once (2026-12-31)",
    )


class SystemMatch(_Strict):
    public_facing: bool | None = None
    pilot: bool | None = None


class When(_Strict):
    """Every list is 'any of'; an empty list matches everything."""

    kinds: list[IncidentKind] = Field(default_factory=list)
    data_categories: list[DataCategory] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    system: SystemMatch = Field(default_factory=SystemMatch)
    min_affected: int | None = Field(
        default=None,
        ge=1,
        description="only when at least this many people are affected, e.g. 1000 for a statute's "
        "threshold; a report whose count is not yet known does not match",
    )


class EscalationLevel(_Strict):
    """One step of an escalation chain: who is told when the level before was breached."""

    notify: list[Role] = Field(min_length=1)
    within: timedelta = Field(
        default=timedelta(hours=24), description="how long this level has to acknowledge"
    )


Follow = Literal["security_case", "sunset_review"]
Trigger = Literal["report", "personal_information_acquired"]


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    trigger: Trigger = Field(
        default="report",
        description="what opens the obligation: the report itself, or a later confirmed fact",
    )
    when: When = Field(default_factory=When)
    notify: list[Role] = Field(min_length=1)
    within: Deadline
    reminders: list[timedelta] = Field(
        default_factory=list, description="how long before the deadline to remind, e.g. PT2H"
    )
    escalation: list[EscalationLevel] = Field(default_factory=list)
    opens: list[Follow] = Field(default_factory=list)
    action: str | None = Field(
        default=None,
        min_length=1,
        description="what the people told must do, in plain words (for a statute: what it "
        "requires, of what content, to whom); shown in the notice and by `explain`",
    )
    duty: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="names a duty distinct from being told of the report (e.g. "
        "attorney-general-sample): two rules naming one role give two obligations unless their "
        "duty is the same",
    )
    citation: Citation


class Triage(_Strict):
    """Where a report goes that no rule matches: it is still recorded and someone looks at it."""

    notify: list[Role] = Field(min_length=1)
    within: Deadline
    action: str | None = Field(default=None, min_length=1)
    citation: Citation


Severity = Literal["low", "moderate", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "moderate", "high", "critical")


class SeverityRule(_Strict):
    """Raises a case's severity when its reports match: the highest matching rule wins."""

    when: When
    severity: Severity
    because: str = Field(min_length=1, description="in plain words, e.g. criminal-justice data")


class ResponseTask(_Strict):
    """A task of the response plan: someone (a role) must do it, by a deadline, with the same
    reminders and escalation as an obligation; cited like a rule."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    action: str = Field(min_length=1, description="what to do, in plain words")
    owner: Role
    within: Deadline
    reminders: list[timedelta] = Field(default_factory=list)
    escalation: list[EscalationLevel] = Field(default_factory=list)
    required: bool = Field(
        default=True, description="must be done (or found not to apply) before the case closes"
    )
    when: When = Field(
        default_factory=When, description="only for cases whose reports match, e.g. CJI data"
    )
    citation: Citation


class ResponsePlan(_Strict):
    """What the organisation's incident response plan asks once a rule `opens: [security_case]`:
    who owns the case, how severe it is, and the tasks it starts with."""

    title: str = Field(min_length=1, description="the plan as people name it")
    owner: Role = Field(description="who owns the case until someone takes it")
    default_severity: Severity = "moderate"
    severity: list[SeverityRule] = Field(default_factory=list)
    tasks: list[ResponseTask] = Field(min_length=1)
    citation: Citation


# What the public inventory page may show of a system, for `Pack.public_fields`.
PUBLIC_FIELDS = (
    "department",
    "vendor",
    "purpose",
    "data_categories",
    "public_facing",
    "pilot",
    "approved_on",
    "next_review_on",
)


class ReviewThreshold(_Strict):
    """Opens a review of an AI system when this many matching reports about it arrive within
    a window (a pattern of harm or failure)."""

    count: int = Field(ge=2, description="reports about one system, this one included")
    within: timedelta = Field(description="the window, e.g. P30D")
    kinds: list[IncidentKind] = Field(min_length=1)
    citation: Citation


class AuditPlan(_Strict):
    """A periodic audit of each approved system: when one falls due, a review of the system
    opens (a clock per system, counted from its approval or its last review's decision)."""

    every: timedelta = Field(description="how often, e.g. P365D")
    note: str | None = Field(
        default=None,
        description="why this interval, when the source names none (e.g. 'reasonable intervals')",
    )
    citation: Citation


class SunsetPlan(_Strict):
    """How the pack reviews a failing AI system: who decides (halt, an exception, or a
    phase-out plan), by when, what a phase-out plan must address, and what opens a review
    besides rules marked `opens: [sunset_review]`."""

    decider: Role = Field(description="who decides, e.g. cio; the only one who may")
    exception_decider: Role | None = Field(
        default=None,
        description="who alone may grant an exception, when not the decider (e.g. city_manager)",
    )
    exception_citation: Citation | None = None
    decide_within: Deadline
    audit: AuditPlan | None = None
    halt_at_once: list[str] = Field(
        default_factory=list,
        description="ids of rules whose review halts the system at once (e.g. a pilot halt)",
    )
    threshold: ReviewThreshold | None = None
    plan_sections: list[str] = Field(
        default_factory=lambda: [
            "data_ownership",
            "data_access",
            "portability",
            "impact_services",
            "impact_users",
            "impact_residents",
        ],
        description="what a phase-out plan must address, each a field of the plan",
    )
    citation: Citation


class ApprovalRule(_Strict):
    """Who approves a new AI system before anyone uses it, and by when. Approval puts the
    system in the inventory as active."""

    approver: Role = Field(description="who approves or refuses, e.g. it_director")
    consult: list[Role] = Field(
        default_factory=list,
        description="who is asked first and told of the request (e.g. Sacramento's AI Officer)",
    )
    decide_within: Deadline
    citation: Citation


class LeftOut(_Strict):
    section: str
    why: str


class Pack(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    organisation: str
    timezone: str = Field(description="IANA zone, e.g. America/Los_Angeles")
    source: str = Field(description="the seed policy file this pack encodes")
    source_title: str = Field(
        min_length=1,
        description="the source document as people name it, e.g. San José Policy 1.7.12",
    )
    source_url: str | None = Field(default=None, description="where the official text is")
    jurisdiction: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        description="ISO 3166 country and subdivision whose public holidays are not business "
        "days, e.g. US-CA",
    )
    observed_holidays: list[ObservedDay] = Field(
        default_factory=list,
        description="the organisation's own closures beyond the public calendar",
    )
    open_on: list[str] = Field(
        default_factory=list,
        description="public holidays of the jurisdiction's calendar the organisation works, by "
        "the calendar's name for them (e.g. Susan B. Anthony Day): business days after all",
    )
    layers_on: str | None = Field(
        default=None, description="the citywide pack a department pack adds to"
    )
    layers_on_note: str | None = Field(
        default=None,
        description="why this department pack adds to that citywide pack, when the source "
        "does not say so itself (an interpretation a deployment may change)",
    )
    departments: list[str] = Field(
        default_factory=list,
        description="for a department pack: the departments whose reports it applies to",
    )
    business_hours_end: str = Field(
        default="17:00", pattern=r"^\d{2}:\d{2}$", description="end of a business day, local time"
    )
    interpretations: dict[str, Interpretation] = Field(default_factory=dict)
    triage: Triage | None = None
    rules: list[Rule] = Field(min_length=1)
    response_plan: ResponsePlan | None = None
    sunset: SunsetPlan | None = None
    approval: ApprovalRule | None = None
    public_fields: list[str] = Field(
        default_factory=lambda: ["department", "vendor", "purpose", "public_facing", "pilot"],
        description="what the public inventory page shows of each approved system",
    )
    not_encoded: list[LeftOut] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as America/Chicago"
            ) from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Pack:
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(dupes)}")
        deadlines = [(r.id, r.within) for r in self.rules]
        if self.triage:
            deadlines.append(("triage", self.triage.within))
        if self.response_plan:
            deadlines += [(f"task {t.id}", t.within) for t in self.response_plan.tasks]
            tasks = [t.id for t in self.response_plan.tasks]
            if len(set(tasks)) != len(tasks):
                raise ValueError("response plan task ids must be unique")
        if self.approval:
            deadlines.append(("approval", self.approval.decide_within))
        unknown_fields = sorted(set(self.public_fields) - set(PUBLIC_FIELDS))
        if unknown_fields:
            raise ValueError(
                f"public_fields names fields a system does not have: {unknown_fields}; "
                f"use some of {', '.join(PUBLIC_FIELDS)}"
            )
        if self.sunset:
            deadlines.append(("sunset decision", self.sunset.decide_within))
            unknown = sorted(set(self.sunset.halt_at_once) - {r.id for r in self.rules})
            if unknown:
                raise ValueError(f"sunset.halt_at_once names rules that do not exist: {unknown}")
        reviewing = [r.id for r in self.rules if "sunset_review" in r.opens]
        if reviewing and self.sunset is None:
            raise ValueError(
                f"rule {reviewing[0]!r} opens a sunset review, but the pack has no sunset "
                "section saying who decides"
            )
        opening = [r.id for r in self.rules if "security_case" in r.opens]
        if opening and self.response_plan is None:
            raise ValueError(
                f"rule {opening[0]!r} opens a security case, but the pack has no response_plan "
                "saying who owns it and what its tasks are"
            )
        for rule_id, d in deadlines:
            if d.interpretation is not None and d.interpretation not in self.interpretations:
                known = ", ".join(sorted(self.interpretations)) or "none"
                raise ValueError(
                    f"rule {rule_id!r} uses interpretation {d.interpretation!r}, which the pack "
                    f"does not define (defined: {known})"
                )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
