"""Each shipped pack, table-driven: a report in, the exact obligations out (roles, duties,
people, UTC, and the holidays that moved each deadline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.policy import ReportFacts, load_directory, load_packs, plan_for
from incidents.policy.loader import DEMO_DIRECTORY, available_packs, load_pack, pack_path

DIRECTORY = load_directory(DEMO_DIRECTORY)
FALLBACK = ("ai-incidents@city.example",)
JULY_4_OBSERVED = date(2026, 7, 3)
THANKSGIVING = (date(2026, 11, 26), date(2026, 11, 27))
VETERANS_DAY = date(2026, 11, 11)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Want:
    role: str
    recipients: tuple[str, ...]
    due: str  # exact UTC
    rules: tuple[str, ...]
    late: bool = False
    duty: str = ""  # "" is being told of the report; a statute's duties have their own
    holidays: tuple[str, ...] = ()  # the days off that moved the deadline, in words


@dataclass(frozen=True)
class Case:
    name: str
    packs: str
    kind: str
    department: str
    discovered: str
    now: str
    want: tuple[Want, ...]
    system: str = "Records Summarizer"
    data: tuple[str, ...] = ()
    holidays: tuple[date, ...] = ()
    opens: frozenset[str] = field(default_factory=frozenset)
    # A later event instead of the report: `now` is when the case confirmed acquisition.
    trigger: str = "report"
    affected: int | None = None


CASES = [
    # --- san-jose (America/Los_Angeles) -------------------------------------------------------
    Case(
        "san-jose harm across the March DST change: 24 real hours",
        "san-jose",
        "harm",
        "Parks",
        "2026-03-07T10:00:00-08:00",
        "2026-03-07T12:00:00-08:00",
        (
            Want("cdpo", ("cdpo@city.example",), "2026-03-08T18:00:00Z", ("san-jose/harm-24h",)),
            Want(
                "employee_relations",
                ("employee.relations@city.example",),
                "2026-03-08T18:00:00Z",
                ("san-jose/harm-24h",),
            ),
            Want(
                "supervisor",
                ("parks.supervisor@city.example",),
                "2026-03-08T18:00:00Z",
                ("san-jose/harm-24h",),
            ),
        ),
    ),
    Case(
        "san-jose harm found late, across the November DST change: filed after the deadline",
        "san-jose",
        "harm",
        "Housing",
        "2026-10-31T09:00:00-07:00",
        "2026-11-02T09:00:00-08:00",
        (
            Want(
                "cdpo",
                ("cdpo@city.example",),
                "2026-11-01T16:00:00Z",
                ("san-jose/harm-24h",),
                late=True,
            ),
            Want(
                "employee_relations",
                ("employee.relations@city.example",),
                "2026-11-01T16:00:00Z",
                ("san-jose/harm-24h",),
                late=True,
            ),
            Want(
                "supervisor",
                ("housing.supervisor@city.example",),
                "2026-11-01T16:00:00Z",
                ("san-jose/harm-24h",),
                late=True,
            ),
        ),
    ),
    Case(
        "san-jose data exposure after hours before a holiday weekend: the CISO in 4 real hours, "
        "the CDPO on Monday 17:00",
        "san-jose",
        "data_exposure",
        "Housing",
        "2026-07-02T18:00:00-07:00",
        "2026-07-02T18:05:00-07:00",
        (
            Want(
                "cdpo",
                ("cdpo@city.example",),
                "2026-07-07T00:00:00Z",
                ("san-jose/privacy-cdpo",),
                holidays=(
                    "a holiday set for this deployment (INCIDENTS_HOLIDAYS); "
                    "Independence Day (observed), Fri 3 Jul 2026",
                ),
            ),
            Want(
                "ciso",
                ("ciso@city.example",),
                "2026-07-03T05:00:00Z",
                ("san-jose/incident-response",),
            ),
        ),
        data=("pii",),
        holidays=(JULY_4_OBSERVED,),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "san-jose same report, no holidays set by the deployment: California's calendar still "
        "skips the observed Independence Day: the CDPO on Monday 17:00",
        "san-jose",
        "data_exposure",
        "Housing",
        "2026-07-02T18:00:00-07:00",
        "2026-07-02T18:05:00-07:00",
        (
            Want(
                "cdpo",
                ("cdpo@city.example",),
                "2026-07-07T00:00:00Z",
                ("san-jose/privacy-cdpo",),
                holidays=("Independence Day (observed), Fri 3 Jul 2026",),
            ),
            Want(
                "ciso",
                ("ciso@city.example",),
                "2026-07-03T05:00:00Z",
                ("san-jose/incident-response",),
            ),
        ),
        data=("pii",),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "san-jose failing system before the fall-back weekend: sunset review, Monday 17:00 PST",
        "san-jose",
        "malfunction",
        "Parks",
        "2026-10-30T10:00:00-07:00",
        "2026-10-30T10:05:00-07:00",
        (
            Want("cdpo", ("cdpo@city.example",), "2026-11-03T01:00:00Z", ("san-jose/sunset-halt",)),
            Want("cio", ("cio@city.example",), "2026-11-03T01:00:00Z", ("san-jose/sunset-halt",)),
        ),
        system="Permit Assistant",
        opens=frozenset({"sunset_review"}),
    ),
    Case(
        "san-jose prohibited use: the CDPO, who ensures policy compliance (the policy names no "
        "one else)",
        "san-jose",
        "prohibited_use",
        "Parks",
        "2026-04-07T09:00:00-07:00",
        "2026-04-07T09:05:00-07:00",
        (
            Want(
                "cdpo", ("cdpo@city.example",), "2026-04-09T00:00:00Z", ("san-jose/prohibited-use",)
            ),
        ),
    ),
    Case(
        "san-jose security incident on a Friday evening: the CISO in 4 real hours, not Monday",
        "san-jose",
        "security",
        "Parks",
        "2026-05-22T19:00:00-07:00",
        "2026-05-22T19:05:00-07:00",
        (
            Want(
                "ciso",
                ("ciso@city.example",),
                "2026-05-23T06:00:00Z",
                ("san-jose/incident-response",),
            ),
        ),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "san-jose report no rule matches: triage to the CISO",
        "san-jose",
        "unauthorized_tool",
        "Parks",
        "2026-03-10T09:00:00-07:00",
        "2026-03-10T09:05:00-07:00",
        (Want("ciso", ("ciso@city.example",), "2026-03-12T00:00:00Z", ("san-jose/triage",)),),
    ),
    # --- sacramento (America/Los_Angeles) -----------------------------------------------------
    Case(
        "sacramento inaccurate output on Friday before the March DST change: Monday 17:00 PDT",
        "sacramento",
        "inaccurate_output",
        "Housing",
        "2026-03-06T16:00:00-08:00",
        "2026-03-06T16:05:00-08:00",
        (
            Want(
                "cio",
                ("cio@city.example",),
                "2026-03-10T00:00:00Z",
                ("sacramento/malfunction-promptly",),
            ),
            Want(
                "supervisor",
                ("housing.supervisor@city.example",),
                "2026-03-10T00:00:00Z",
                ("sacramento/malfunction-promptly",),
            ),
        ),
    ),
    Case(
        "sacramento security incident with PII: the ISO in 4 real hours, the AIO next day",
        "sacramento",
        "security",
        "Parks",
        "2026-04-06T09:00:00-07:00",
        "2026-04-06T09:05:00-07:00",
        (
            Want("aio", ("aio@city.example",), "2026-04-08T00:00:00Z", ("sacramento/privacy-aio",)),
            Want(
                "iso",
                ("iso@city.example",),
                "2026-04-06T20:00:00Z",
                ("sacramento/cybersecurity-incident",),
            ),
        ),
        data=("pii",),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "sacramento unapproved public AI tool: CIO and AIO",
        "sacramento",
        "unauthorized_tool",
        "Parks",
        "2026-04-06T09:00:00-07:00",
        "2026-04-06T09:05:00-07:00",
        (
            Want(
                "aio",
                ("aio@city.example",),
                "2026-04-08T00:00:00Z",
                ("sacramento/unapproved-public-ai",),
            ),
            Want(
                "cio",
                ("cio@city.example",),
                "2026-04-08T00:00:00Z",
                ("sacramento/unapproved-public-ai",),
            ),
        ),
    ),
    Case(
        "sacramento harm (no rule) over Thanksgiving: triage to the AIO on Monday",
        "sacramento",
        "harm",
        "Parks",
        "2026-11-25T12:00:00-08:00",
        "2026-11-25T12:05:00-08:00",
        (
            Want(
                "aio",
                ("aio@city.example",),
                "2026-12-01T01:00:00Z",
                ("sacramento/triage",),
                holidays=(
                    "a holiday set for this deployment (INCIDENTS_HOLIDAYS); Thanksgiving Day, "
                    "Thu 26 Nov 2026",
                    "a holiday set for this deployment (INCIDENTS_HOLIDAYS); Day After "
                    "Thanksgiving, Fri 27 Nov 2026",
                ),
            ),
        ),
        holidays=THANKSGIVING,
    ),
    Case(
        "sacramento harm over Thanksgiving, no holidays set: California's calendar closes "
        "Thursday and Friday",
        "sacramento",
        "harm",
        "Parks",
        "2026-11-25T12:00:00-08:00",
        "2026-11-25T12:05:00-08:00",
        (
            Want(
                "aio",
                ("aio@city.example",),
                "2026-12-01T01:00:00Z",
                ("sacramento/triage",),
                holidays=(
                    "Thanksgiving Day, Thu 26 Nov 2026",
                    "Day After Thanksgiving, Fri 27 Nov 2026",
                ),
            ),
        ),
    ),
    Case(
        "sacramento malfunction on the Friday before Memorial Day: Tuesday 17:00 PDT, not the "
        "holiday Monday",
        "sacramento",
        "malfunction",
        "Parks",
        "2026-05-22T10:00:00-07:00",
        "2026-05-22T10:05:00-07:00",
        (
            Want(
                "cio",
                ("cio@city.example",),
                "2026-05-27T00:00:00Z",
                ("sacramento/malfunction-promptly",),
                holidays=("Memorial Day, Mon 25 May 2026",),
            ),
            Want(
                "supervisor",
                ("parks.supervisor@city.example",),
                "2026-05-27T00:00:00Z",
                ("sacramento/malfunction-promptly",),
                holidays=("Memorial Day, Mon 25 May 2026",),
            ),
        ),
    ),
    # --- redondo-beach (America/Los_Angeles) --------------------------------------------------
    Case(
        "redondo-beach data exposure just before spring-forward: 4 real hours",
        "redondo-beach",
        "data_exposure",
        "Parks",
        "2026-03-08T01:30:00-08:00",
        "2026-03-08T01:40:00-08:00",
        (
            Want(
                "it_department",
                ("it@city.example",),
                "2026-03-08T13:30:00Z",
                ("redondo-beach/data-incident-immediately",),
            ),
        ),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "redondo-beach unapproved tool with PII in a pilot during fall-back: halt review",
        "redondo-beach",
        "unauthorized_tool",
        "Parks",
        "2026-11-01T00:30:00-07:00",
        "2026-11-01T00:40:00-07:00",
        (
            Want(
                "cio",
                ("cio@city.example",),
                "2026-11-01T11:30:00Z",
                ("redondo-beach/pilot-halt", "redondo-beach/privileges-review"),
            ),
            Want(
                "it_department",
                ("it@city.example",),
                "2026-11-01T11:30:00Z",
                ("redondo-beach/misuse-immediately", "redondo-beach/sensitive-data-in-pilot"),
            ),
        ),
        system="Permit Assistant",
        data=("pii",),
        opens=frozenset({"sunset_review"}),
    ),
    Case(
        "redondo-beach data exposure reported five hours after discovery is late",
        "redondo-beach",
        "data_exposure",
        "Parks",
        "2026-05-01T08:00:00-07:00",
        "2026-05-01T13:00:00-07:00",
        (
            Want(
                "it_department",
                ("it@city.example",),
                "2026-05-01T19:00:00Z",
                ("redondo-beach/data-incident-immediately",),
                late=True,
            ),
        ),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "redondo-beach biased output (no rule): triage to the IT Director",
        "redondo-beach",
        "discriminatory_output",
        "Parks",
        "2026-05-01T08:00:00-07:00",
        "2026-05-01T08:05:00-07:00",
        (Want("cio", ("cio@city.example",), "2026-05-05T00:00:00Z", ("redondo-beach/triage",)),),
    ),
    # --- wisconsin-city (America/Chicago) -----------------------------------------------------
    Case(
        "wisconsin-city suspected breach across spring-forward: 4 real hours",
        "wisconsin-city",
        "data_exposure",
        "Parks",
        "2026-03-07T23:00:00-06:00",
        "2026-03-07T23:10:00-06:00",
        (
            Want(
                "data_privacy_officer",
                ("privacy@city.example",),
                "2026-03-08T09:00:00Z",
                ("wisconsin-city/suspected-breach-immediately",),
            ),
            Want(
                "it_department",
                ("it@city.example",),
                "2026-03-08T09:00:00Z",
                ("wisconsin-city/suspected-breach-immediately",),
            ),
        ),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "wisconsin-city biased output: the Department Head's two duties stay apart, the next-day "
        "bias notice and the 10-business-day assessment",
        "wisconsin-city",
        "discriminatory_output",
        "Parks",
        "2026-10-26T10:00:00-05:00",
        "2026-10-26T10:05:00-05:00",
        (
            Want(
                "department_head",
                ("parks.director@city.example",),
                "2026-10-27T22:00:00Z",
                ("wisconsin-city/bias-remediation",),
            ),
            Want(
                "department_head",
                ("parks.director@city.example",),
                "2026-11-09T23:00:00Z",
                ("wisconsin-city/output-assessment",),
                duty="output-assessment",
            ),
        ),
    ),
    Case(
        "wisconsin-city inaccurate output: assessment in 10 business days across fall-back, "
        "and past Veterans Day, which Wisconsin's public calendar keeps",
        "wisconsin-city",
        "inaccurate_output",
        "Parks",
        "2026-10-29T10:00:00-05:00",
        "2026-10-29T10:05:00-05:00",
        (
            Want(
                "department_head",
                ("parks.director@city.example",),
                "2026-11-13T23:00:00Z",
                ("wisconsin-city/output-assessment",),
                duty="output-assessment",
                holidays=("Veterans Day, Wed 11 Nov 2026",),
            ),
        ),
    ),
    Case(
        "wisconsin-city inaccurate output with Veterans Day a holiday: one day later",
        "wisconsin-city",
        "inaccurate_output",
        "Parks",
        "2026-10-29T10:00:00-05:00",
        "2026-10-29T10:05:00-05:00",
        (
            Want(
                "department_head",
                ("parks.director@city.example",),
                "2026-11-13T23:00:00Z",
                ("wisconsin-city/output-assessment",),
                duty="output-assessment",
                holidays=(
                    "a holiday set for this deployment (INCIDENTS_HOLIDAYS); Veterans Day, "
                    "Wed 11 Nov 2026",
                ),
            ),
        ),
        holidays=(VETERANS_DAY,),
    ),
    Case(
        "wisconsin-city unapproved tool with CJI: two rules, one IT Department notice (both are "
        "being told of the report), the earlier deadline",
        "wisconsin-city",
        "unauthorized_tool",
        "Parks",
        "2026-04-07T09:00:00-05:00",
        "2026-04-07T09:05:00-05:00",
        (
            Want(
                "it_department",
                ("it@city.example",),
                "2026-04-07T18:00:00Z",
                ("wisconsin-city/cjis-data", "wisconsin-city/unapproved-system"),
            ),
        ),
        data=("cji",),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "wisconsin-city prohibited use: the IT Department, whose approval every AI usage needs",
        "wisconsin-city",
        "prohibited_use",
        "Parks",
        "2026-04-07T09:00:00-05:00",
        "2026-04-07T09:05:00-05:00",
        (
            Want(
                "it_department",
                ("it@city.example",),
                "2026-04-08T22:00:00Z",
                ("wisconsin-city/prohibited-use",),
            ),
        ),
    ),
    Case(
        "wisconsin-city harm (no rule): triage to the IT Department",
        "wisconsin-city",
        "harm",
        "Parks",
        "2026-10-29T10:00:00-05:00",
        "2026-10-29T10:05:00-05:00",
        (
            Want(
                "it_department",
                ("it@city.example",),
                "2026-10-30T22:00:00Z",
                ("wisconsin-city/triage",),
            ),
        ),
    ),
    # --- milwaukee-pd layered on wisconsin-city (America/Chicago) -----------------------------
    Case(
        "layered: a Police report of biased output gets the city's and the department's duties",
        "wisconsin-city,milwaukee-pd",
        "discriminatory_output",
        "Police",
        "2026-10-26T10:00:00-05:00",
        "2026-10-26T10:05:00-05:00",
        (
            Want(
                "ai_committee",
                ("ai.committee@city.example",),
                "2026-10-27T22:00:00Z",
                ("milwaukee-pd/bias-promptly",),
            ),
            Want(
                "ai_coordinator",
                ("mpd.ai.coordinator@city.example",),
                "2026-10-27T22:00:00Z",
                ("milwaukee-pd/bias-promptly",),
            ),
            Want(
                "department_head",
                ("police.chief@city.example",),
                "2026-10-27T22:00:00Z",
                ("wisconsin-city/bias-remediation",),
            ),
            Want(
                "department_head",
                ("police.chief@city.example",),
                "2026-11-09T23:00:00Z",
                ("wisconsin-city/output-assessment",),
                duty="output-assessment",
            ),
        ),
    ),
    Case(
        "layered: the same report from Parks gets only the city's duties",
        "wisconsin-city,milwaukee-pd",
        "discriminatory_output",
        "Parks",
        "2026-10-26T10:00:00-05:00",
        "2026-10-26T10:05:00-05:00",
        (
            Want(
                "department_head",
                ("parks.director@city.example",),
                "2026-10-27T22:00:00Z",
                ("wisconsin-city/bias-remediation",),
            ),
            Want(
                "department_head",
                ("parks.director@city.example",),
                "2026-11-09T23:00:00Z",
                ("wisconsin-city/output-assessment",),
                duty="output-assessment",
            ),
        ),
    ),
    Case(
        "layered: Police harm, which no sentence of the SOP or the city policy addresses, goes "
        "to the department's triage before the city's",
        "wisconsin-city,milwaukee-pd",
        "harm",
        "Police",
        "2026-03-06T16:00:00-06:00",
        "2026-03-06T16:05:00-06:00",
        (
            Want(
                "ai_coordinator",
                ("mpd.ai.coordinator@city.example",),
                "2026-03-09T22:00:00Z",
                ("milwaukee-pd/triage",),
            ),
        ),
    ),
    Case(
        "layered: Police prohibited use (e.g. surveillance) goes to the city's IT Department and "
        "the department's AI coordinator, citing their duties, not one prohibition",
        "wisconsin-city,milwaukee-pd",
        "prohibited_use",
        "Police",
        "2026-03-10T09:00:00-05:00",
        "2026-03-10T09:05:00-05:00",
        (
            Want(
                "ai_coordinator",
                ("mpd.ai.coordinator@city.example",),
                "2026-03-11T22:00:00Z",
                ("milwaukee-pd/prohibited-use",),
            ),
            Want(
                "it_department",
                ("it@city.example",),
                "2026-03-11T22:00:00Z",
                ("wisconsin-city/prohibited-use",),
            ),
        ),
    ),
    Case(
        "layered: Police inaccurate output on a public-facing system: the AI coordinator's audit "
        "and the Department Head's assessment",
        "wisconsin-city,milwaukee-pd",
        "inaccurate_output",
        "Police",
        "2026-03-10T09:00:00-05:00",
        "2026-03-10T09:05:00-05:00",
        (
            Want(
                "ai_coordinator",
                ("mpd.ai.coordinator@city.example",),
                "2026-03-11T22:00:00Z",
                ("milwaukee-pd/trustworthiness-audit",),
            ),
            Want(
                "department_head",
                ("police.chief@city.example",),
                "2026-03-24T22:00:00Z",
                ("wisconsin-city/output-assessment",),
                duty="output-assessment",
            ),
        ),
        system="Benefits Chatbot",
    ),
    Case(
        "layered: Parks harm gets the city's triage",
        "wisconsin-city,milwaukee-pd",
        "harm",
        "Parks",
        "2026-03-06T16:00:00-06:00",
        "2026-03-06T16:05:00-06:00",
        (
            Want(
                "it_department",
                ("it@city.example",),
                "2026-03-09T22:00:00Z",
                ("wisconsin-city/triage",),
            ),
        ),
    ),
    Case(
        "layered: Police data exposure with CJI, IT rules merged, earlier deadline wins",
        "wisconsin-city,milwaukee-pd",
        "data_exposure",
        "Police",
        "2026-03-06T16:30:00-06:00",
        "2026-03-09T08:00:00-05:00",
        (
            Want(
                "data_privacy_officer",
                ("privacy@city.example",),
                "2026-03-07T02:30:00Z",
                ("wisconsin-city/suspected-breach-immediately",),
                late=True,
            ),
            Want(
                "it_department",
                ("it@city.example",),
                "2026-03-07T02:30:00Z",
                ("wisconsin-city/suspected-breach-immediately", "wisconsin-city/cjis-data"),
                late=True,
            ),
            Want(
                "ai_coordinator",
                ("mpd.ai.coordinator@city.example",),
                "2026-03-09T22:00:00Z",
                ("milwaukee-pd/sensitive-data-public-ai",),
            ),
        ),
        data=("cji", "pii"),
        opens=frozenset({"security_case"}),
    ),
    Case(
        "milwaukee-pd alone: a Police security report no rule matches gets the department triage",
        "milwaukee-pd",
        "security",
        "Police",
        "2026-03-10T09:00:00-05:00",
        "2026-03-10T09:05:00-05:00",
        (
            Want(
                "ai_coordinator",
                ("mpd.ai.coordinator@city.example",),
                "2026-03-11T22:00:00Z",
                ("milwaukee-pd/triage",),
            ),
        ),
    ),
    # --- statutes: opened when a case confirms acquisition, one obligation per duty -----------
    Case(
        "california, 600 residents: the City Attorney gets two obligations, the notices to "
        "residents (30 days) and the Attorney General's sample copy (45 days)",
        "san-jose,ca-breach-notice",
        "data_exposure",
        "Parks",
        "2026-10-12T09:00:00-07:00",
        "2026-10-15T10:00:00-07:00",
        (
            Want(
                "cdpo",
                ("cdpo@city.example",),
                "2026-11-14T17:00:00Z",
                ("ca-breach-notice/notify-residents-30d",),
                duty="resident-notice",
            ),
            Want(
                "legal",
                ("attorney@city.example",),
                "2026-11-14T17:00:00Z",
                ("ca-breach-notice/notify-residents-30d",),
                duty="resident-notice",
            ),
            Want(
                "legal",
                ("attorney@city.example",),
                "2026-11-29T17:00:00Z",
                ("ca-breach-notice/attorney-general-sample",),
                duty="attorney-general-sample",
            ),
        ),
        data=("pii",),
        trigger="personal_information_acquired",
        affected=600,
    ),
    Case(
        "wisconsin, 1,200 individuals: the City Attorney gets two obligations, the notices to "
        "individuals and the consumer reporting agencies, both 45 days",
        "wisconsin-city,wi-134-98",
        "data_exposure",
        "Parks",
        "2026-09-18T09:00:00-05:00",
        "2026-09-20T10:00:00-05:00",
        (
            Want(
                "data_privacy_officer",
                ("privacy@city.example",),
                "2026-11-04T15:00:00Z",
                ("wi-134-98/notify-individuals-45d",),
                duty="individual-notice",
            ),
            Want(
                "legal",
                ("attorney@city.example",),
                "2026-11-04T15:00:00Z",
                ("wi-134-98/notify-individuals-45d",),
                duty="individual-notice",
            ),
            Want(
                "legal",
                ("attorney@city.example",),
                "2026-11-04T15:00:00Z",
                ("wi-134-98/consumer-reporting-agencies",),
                duty="consumer-reporting-agencies",
            ),
        ),
        data=("pii",),
        trigger="personal_information_acquired",
        affected=1200,
    ),
    Case(
        "wisconsin, 999 individuals: no consumer-reporting-agency obligation",
        "wisconsin-city,wi-134-98",
        "data_exposure",
        "Parks",
        "2026-09-18T09:00:00-05:00",
        "2026-09-20T10:00:00-05:00",
        (
            Want(
                "data_privacy_officer",
                ("privacy@city.example",),
                "2026-11-04T15:00:00Z",
                ("wi-134-98/notify-individuals-45d",),
                duty="individual-notice",
            ),
            Want(
                "legal",
                ("attorney@city.example",),
                "2026-11-04T15:00:00Z",
                ("wi-134-98/notify-individuals-45d",),
                duty="individual-notice",
            ),
        ),
        data=("pii",),
        trigger="personal_information_acquired",
        affected=999,
    ),
]


def _packs(names: str):  # type: ignore[no-untyped-def]
    # milwaukee-pd alone is allowed here: the engine does not need the city pack to run.
    return [load_pack(pack_path(n)) for n in names.split(",")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_obligations(case: Case) -> None:
    now = utc(case.now)
    report = ReportFacts(
        kind=IncidentKind(case.kind),
        department=case.department,
        ai_system=case.system,
        discovered_at=datetime.fromisoformat(case.discovered),
        reported_at=now,
        data_categories=frozenset(DataCategory(d) for d in case.data),
        affected_count=case.affected,
    )
    later = case.trigger != "report"
    plan = plan_for(
        report,
        _packs(case.packs),
        DIRECTORY,
        now,
        holidays=case.holidays,
        trigger=case.trigger,  # type: ignore[arg-type]
        since=now if later else None,
    )
    # One obligation per role and duty: a role may have several, so key by both.
    got = [
        Want(
            o.role.value,
            tuple(str(p.email) for p in o.recipients),
            o.due_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            o.rules,
            o.late,
            o.duty,
            o.holidays,
        )
        for o in plan.obligations
    ]
    keys = [(w.role, w.duty) for w in got]
    assert len(set(keys)) == len(keys), f"two obligations for one role and duty: {keys}"
    assert {(w.role, w.duty): w for w in got} == {(w.role, w.duty): w for w in case.want}
    assert plan.opens == case.opens
    for o in plan.obligations:
        assert o.due_at.tzinfo is not None
        assert len(o.citations) == len(o.rules)


def test_every_pack_loads_has_a_triage_and_cites_every_rule() -> None:
    names = available_packs()
    assert {
        "san-jose",
        "sacramento",
        "redondo-beach",
        "wisconsin-city",
        "milwaukee-pd",
        "wi-134-98",
        "ca-breach-notice",
    } <= set(names)
    for name in names:
        pack = load_pack(pack_path(name))
        assert pack.triage is not None, f"{name} has no triage"
        for rule in pack.rules:
            assert rule.citation.quote.strip(), f"{name}/{rule.id} has no quote"
        assert pack.not_encoded, f"{name} lists nothing it leaves out"


def test_zones() -> None:
    zones = {n: load_pack(pack_path(n)).timezone for n in available_packs()}
    for n in ("san-jose", "sacramento", "redondo-beach", "ca-breach-notice"):
        assert zones[n] == "America/Los_Angeles"
    for n in ("wisconsin-city", "milwaukee-pd", "wi-134-98"):
        assert zones[n] == "America/Chicago"


def test_department_pack_needs_its_city_pack() -> None:
    from incidents.policy import PolicyError

    with pytest.raises(PolicyError, match="INCIDENTS_POLICY=wisconsin-city,milwaukee-pd"):
        load_packs(["milwaukee-pd"])
    assert [p.id for p in load_packs(["wisconsin-city", "milwaukee-pd"])] == [
        "wisconsin-city",
        "milwaukee-pd",
    ]


def test_san_jose_harm_rule_is_unchanged() -> None:
    # The runtime's integration tests depend on this rule exactly.
    rule = next(r for r in load_pack(pack_path("san-jose")).rules if r.id == "harm-24h")
    assert rule.notify == [Role.SUPERVISOR, Role.CDPO, Role.EMPLOYEE_RELATIONS]
    assert rule.within.after is not None and rule.within.after.total_seconds() == 24 * 3600
    assert rule.within.from_ == "discovery"
    assert [r.total_seconds() for r in rule.reminders] == [12 * 3600, 2 * 3600]
    assert [lvl.notify for lvl in rule.escalation] == [[Role.CIO]]
