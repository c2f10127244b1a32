"""`case_for`: which security case a report opens under the shipped packs, its owner and severity,
the response plan's tasks with their deadlines counted from the moment the case opens, and the
on-call page that follows the demo directory's roster."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.policy import ReportFacts, load_directory
from incidents.policy.cases import PAGE_DUTY, TASK_DUTY, PlannedCase, case_for
from incidents.policy.engine import PlannedObligation, plan_for
from incidents.policy.loader import DEMO_DIRECTORY, available_packs, load_pack, pack_path
from incidents.policy.schema import Pack

DIRECTORY = load_directory(DEMO_DIRECTORY)
# The seed policies as the service ships them (the packs cite these copies).
SEEDS = Path(__file__).resolve().parents[3] / "incidents" / "policy" / "sources"
CASE_PACKS = ("san-jose", "sacramento", "redondo-beach", "wisconsin-city")


def _packs(names: str) -> list[Pack]:
    return [load_pack(pack_path(n)) for n in names.split(",")]


def _report(
    kind: str,
    *,
    discovered: str,
    reported: datetime,
    department: str = "Parks",
    system: str = "Records Summarizer",
    data: tuple[str, ...] = (),
) -> ReportFacts:
    return ReportFacts(
        kind=IncidentKind(kind),
        department=department,
        ai_system=system,
        discovered_at=datetime.fromisoformat(discovered),
        reported_at=reported,
        data_categories=frozenset(DataCategory(d) for d in data),
    )


def _case(names: str, report: ReportFacts, now: datetime) -> PlannedCase:
    case = case_for(report, _packs(names), DIRECTORY, now)
    assert case is not None
    return case


def _tasks(case: PlannedCase) -> dict[str, PlannedObligation]:
    return {t.rules[0].split("/", 1)[1]: t for t in case.tasks}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_redondo_beach_data_exposure_with_pii_opens_one_high_case() -> None:
    # Found at 08:00, reported and opened at 13:00: the tasks count from the case, not discovery.
    now = datetime.fromisoformat("2026-05-01T13:00:00-07:00")
    report = _report(
        "data_exposure", discovered="2026-05-01T08:00:00-07:00", reported=now, data=("pii",)
    )
    case = _case("redondo-beach", report, now)
    assert case.plans == ("Cybersecurity incident response plan",)
    assert case.rules == ("redondo-beach/data-incident-immediately",)
    assert case.owner is Role.IT_DEPARTMENT
    assert case.severity == "high"
    assert case.because == ("personal information (PII) is involved",)
    tasks = _tasks(case)
    assert "cjis-report-1h" not in tasks  # no criminal justice information
    contain, preserve = tasks["contain-ai-system"], tasks["preserve-records"]
    for task in (contain, preserve):
        assert task.role is Role.IT_DEPARTMENT
        assert tuple(str(p.email) for p in task.recipients) == ("it@city.example",)
        assert task.due_at == now + timedelta(hours=4)
        assert task.timezone == "America/Los_Angeles"
        assert task.late is False
        assert task.reminders == (now + timedelta(hours=3),)
        assert [lvl.notify for lvl in task.escalation] == [[Role.CIO]]
    assert contain.duty == f"{TASK_DUTY}redondo-beach/contain-ai-system"
    assert contain.action is not None and contain.action.startswith("Contain the AI system. ")
    assert preserve.citations[0].section == "VI. Public Records and Data Privacy"
    # Personal information: whether breach notice is owed is the City Attorney's to decide.
    notice = tasks["breach-notice-decision"]
    assert notice.role is Role.LEGAL and notice.due_at == now + timedelta(hours=72)
    # The tasks are in the order they fall due.
    assert [t.due_at for t in case.tasks] == sorted(t.due_at for t in case.tasks)


def test_redondo_beach_lessons_learned_is_business_days_later() -> None:
    # Opened on the Friday before Memorial Day: 20 business days, both holidays on the way
    # skipped, the review well after the hours-long containment and preservation.
    now = datetime.fromisoformat("2026-05-22T10:00:00-07:00")
    report = _report("security", discovered="2026-05-22T09:30:00-07:00", reported=now)
    lessons = _tasks(_case("redondo-beach", report, now))["lessons-learned"]
    assert lessons.role is Role.CIO
    assert _utc(lessons.due_at) == "2026-06-24T00:00:00Z"  # Tue 23 Jun, 17:00 PDT
    assert lessons.holidays == (
        "Memorial Day, Mon 25 May 2026",
        "Juneteenth National Independence Day, Fri 19 Jun 2026",
    )


def test_san_jose_security_report_opens_a_case_owned_by_the_ciso() -> None:
    now = datetime.fromisoformat("2026-05-22T19:05:00-07:00")
    report = _report("security", discovered="2026-05-22T19:00:00-07:00", reported=now)
    case = _case("san-jose", report, now)
    assert case.owner is Role.CISO
    assert case.plans == ("AI Incident Response Plan",)
    assert case.rules == ("san-jose/incident-response",)
    # An internal system, no sensitive data named: the plan's default.
    assert case.severity == "moderate" and case.because == ()
    tasks = _tasks(case)
    assert set(tasks) == {
        "contain-ai-system",
        "preserve-records",
        "notify-provider",
        "scope-data",
        "lessons-learned",
    }
    assert tasks["contain-ai-system"].role is Role.SECURITY_TEAM
    assert tasks["contain-ai-system"].due_at == now + timedelta(hours=4)
    assert tasks["scope-data"].role is Role.CDPO
    assert tasks["lessons-learned"].role is Role.CISO
    sections = {c.section for c in case.citations}
    assert sections == {"Policy, item 4"}


def test_san_jose_public_facing_system_raises_the_severity() -> None:
    now = datetime.fromisoformat("2026-04-07T10:00:00-07:00")
    report = _report(
        "security", discovered="2026-04-07T09:00:00-07:00", reported=now, system="Benefits Chatbot"
    )
    case = _case("san-jose", report, now)
    assert case.severity == "high"
    assert case.because == ("the AI system is public-facing",)


def test_wisconsin_cji_is_critical_with_the_one_hour_cjis_task() -> None:
    now = datetime.fromisoformat("2026-04-07T09:05:00-05:00")
    report = _report(
        "unauthorized_tool", discovered="2026-04-07T09:00:00-05:00", reported=now, data=("cji",)
    )
    case = _case("wisconsin-city", report, now)
    assert case.rules == ("wisconsin-city/cjis-data",)
    assert case.owner is Role.IT_DEPARTMENT
    assert case.severity == "critical"
    assert case.because == ("criminal justice information (CJI) is involved",)
    cjis = case.tasks[0]  # the first to fall due
    assert cjis.rules == ("wisconsin-city/cjis-report-1h",)
    assert cjis.role is Role.IT_DEPARTMENT
    assert cjis.due_at == now + timedelta(hours=1)
    assert _utc(cjis.due_at) == "2026-04-07T15:05:00Z"
    assert cjis.timezone == "America/Chicago"
    assert cjis.reminders == (now + timedelta(minutes=30),)
    assert [lvl.notify for lvl in cjis.escalation] == [[Role.CIO]]
    assert cjis.citations[0].section == "III.c Procedure"
    assert "IR-6" in (cjis.action or "")
    assert _tasks(case)["breach-notice-decision"].role is Role.DATA_PRIVACY_OFFICER


def test_wisconsin_without_cji_has_no_cjis_task() -> None:
    now = datetime.fromisoformat("2026-03-07T23:10:00-06:00")
    report = _report("data_exposure", discovered="2026-03-07T23:00:00-06:00", reported=now)
    case = _case("wisconsin-city", report, now)
    assert case.severity == "moderate"
    assert "cjis-report-1h" not in _tasks(case)
    assert "breach-notice-decision" not in _tasks(case)  # no personal data named yet
    # Across the spring-forward night, 4 hours are 4 real hours.
    assert _utc(_tasks(case)["contain-ai-system"].due_at) == "2026-03-08T09:10:00Z"


def test_layered_police_report_uses_the_city_plan() -> None:
    now = datetime.fromisoformat("2026-03-09T08:00:00-05:00")
    report = _report(
        "data_exposure",
        discovered="2026-03-06T16:30:00-06:00",
        reported=now,
        department="Police",
        data=("cji", "pii"),
    )
    case = _case("wisconsin-city,milwaukee-pd", report, now)
    assert case.plans == (
        "Suspected data breach response (IT Department and Data Privacy Officer)",
    )
    assert case.rules == (
        "wisconsin-city/suspected-breach-immediately",
        "wisconsin-city/cjis-data",
    )
    assert case.severity == "critical"
    assert all(t.rules[0].startswith("wisconsin-city/") for t in case.tasks)


@pytest.mark.parametrize(
    ("names", "kind", "data"),
    [
        ("san-jose", "harm", ()),
        ("redondo-beach", "unauthorized_tool", ("pii",)),
        ("sacramento", "malfunction", ()),
        ("wisconsin-city", "prohibited_use", ()),
        ("wisconsin-city,milwaukee-pd", "discriminatory_output", ()),
        ("ca-breach-notice", "data_exposure", ("pii",)),
    ],
)
def test_no_case_opening_rule_gives_none(names: str, kind: str, data: tuple[str, ...]) -> None:
    now = datetime.fromisoformat("2026-04-07T10:00:00-07:00")
    report = _report(kind, discovered="2026-04-07T09:00:00-07:00", reported=now, data=data)
    assert case_for(report, _packs(names), DIRECTORY, now) is None


@pytest.mark.parametrize(
    ("now", "first"),
    [
        ("2026-03-06T15:00:00-08:00", "ciso@city.example"),  # business hours: the CISO
        ("2026-03-06T19:00:00-08:00", "soc@city.example"),  # a weekday night: Security Operations
        ("2026-03-07T03:00:00-08:00", "soc@city.example"),  # Friday's night shift, past midnight
        ("2026-03-07T10:00:00-08:00", "soc@city.example"),  # a weekend day
    ],
)
def test_the_page_goes_to_the_on_call_primary_then_the_chain(now: str, first: str) -> None:
    at = datetime.fromisoformat(now)
    report = _report("security", discovered=now, reported=at)
    page = _case("san-jose", report, at).page
    assert page.duty == PAGE_DUTY
    assert page.role is Role.SECURITY_ON_CALL
    assert tuple(str(p.email) for p in page.recipients) == (first,)
    assert page.due_at == at + timedelta(minutes=15)
    # The roster's later steps, each opened when the one before waited unacknowledged; then
    # the whole chain once more (the roster's `repeat: 1`).
    first_round = [
        ([Role.SECURITY_ON_CALL], timedelta(minutes=15)),
        ([Role.SECURITY_BACKUP], timedelta(minutes=15)),
        ([Role.CISO], timedelta(minutes=30)),
        ([Role.CIO], timedelta(hours=1)),
    ]
    assert [(lvl.notify, lvl.within) for lvl in page.escalation] == (first_round * 2)[1:]


def test_with_no_roster_the_plan_owner_is_paged() -> None:
    directory = DIRECTORY.model_copy(update={"on_call": None})
    now = datetime.fromisoformat("2026-04-06T09:05:00-07:00")
    report = _report("security", discovered="2026-04-06T09:00:00-07:00", reported=now)
    case = case_for(report, _packs("sacramento"), directory, now)
    assert case is not None and case.owner is Role.ISO
    assert case.page.role is Role.ISO
    assert tuple(str(p.email) for p in case.page.recipients) == ("iso@city.example",)
    assert case.page.escalation == ()


def test_every_security_case_rule_has_a_plan_with_the_core_tasks() -> None:
    for name in available_packs():
        pack = load_pack(pack_path(name))
        opens = any("security_case" in r.opens for r in pack.rules)
        plan = pack.response_plan
        assert (plan is not None) == opens, name
        if plan is None:
            continue
        assert name in CASE_PACKS
        tasks = {t.id: t for t in plan.tasks}
        for core in ("contain-ai-system", "preserve-records", "scope-data", "notify-provider"):
            after = tasks[core].within.after
            assert after is not None and after <= timedelta(hours=48), (name, core)
        assert tasks["contain-ai-system"].within.after == timedelta(hours=4)
        assert tasks["preserve-records"].within.after == timedelta(hours=4)
        cjis = tasks["cjis-report-1h"]
        assert cjis.within.after == timedelta(hours=1)
        assert cjis.when.data_categories == [DataCategory.CJI]
        notice = tasks["breach-notice-decision"]
        assert set(notice.when.data_categories) == {
            DataCategory.PII,
            DataCategory.PHI,
            DataCategory.CJI,
        }
        lessons = tasks["lessons-learned"]
        assert lessons.required and lessons.within.business_days == 20
        assert {s.severity for s in plan.severity} == {"high", "critical"}
        assert plan.default_severity == "moderate"


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("**", "")
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip()


def test_every_response_plan_quote_is_verbatim_from_its_seed() -> None:
    for name in CASE_PACKS:
        plan = load_pack(pack_path(name)).response_plan
        assert plan is not None
        cites = [("plan", plan.citation)] + [(t.id, t.citation) for t in plan.tasks]
        for what, c in cites:
            seed = SEEDS / c.file
            assert seed.exists(), (name, what, c.file)
            assert _plain(c.quote) in _plain(seed.read_text(encoding="utf-8")), (name, what)


def test_a_case_and_the_report_obligations_agree_on_what_opens_it() -> None:
    now = datetime.fromisoformat("2026-04-06T09:05:00-07:00")
    report = _report("security", discovered="2026-04-06T09:00:00-07:00", reported=now)
    for name in CASE_PACKS:
        packs = _packs(name)
        opens = "security_case" in plan_for(report, packs, DIRECTORY, now).opens
        assert opens == (case_for(report, packs, DIRECTORY, now) is not None), name
