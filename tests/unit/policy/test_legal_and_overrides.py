"""Statutory clocks opened by a later confirmation, deployment overrides, holidays, plain words."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.policy import PolicyError, ReportFacts, load_directory, plan_for
from incidents.policy.calendar import calendar_for
from incidents.policy.engine import Plan, PlannedObligation
from incidents.policy.loader import DEMO_DIRECTORY, available_packs, load_pack, pack_path
from incidents.policy.overrides import apply_interpretations
from incidents.policy.presentation import describe_pack, obligation_json

DIRECTORY = load_directory(DEMO_DIRECTORY)
# The seed policies as the service ships them (the packs cite these copies).
SEEDS = Path(__file__).resolve().parents[3] / "incidents" / "policy" / "sources"


def _report(affected: int | None = None, kind: str = "data_exposure") -> ReportFacts:
    return ReportFacts(
        kind=IncidentKind(kind),
        department="Parks",
        ai_system="Benefits Chatbot",
        discovered_at=datetime.fromisoformat("2026-09-01T10:00:00-05:00"),
        reported_at=datetime.fromisoformat("2026-09-01T11:00:00-05:00"),
        data_categories=frozenset({DataCategory.PII}),
        affected_count=affected,
    )


def _by_duty(plan: Plan) -> dict[tuple[str, str], PlannedObligation]:
    out = {(o.role.value, o.duty): o for o in plan.obligations}
    assert len(out) == len(plan.obligations), "one obligation per role and duty"
    return out


@pytest.mark.parametrize(("affected", "agencies"), [(None, False), (999, False), (1000, True)])
def test_wisconsin_notice_45_days_after_confirmation(affected: int | None, agencies: bool) -> None:
    confirmed = datetime.fromisoformat("2026-09-20T10:00:00-05:00")
    now = confirmed
    plan = plan_for(
        _report(affected),
        [load_pack(pack_path("wi-134-98"))],
        DIRECTORY,
        now,
        trigger="personal_information_acquired",
        since=confirmed,
    )
    got = _by_duty(plan)
    expected = {("legal", "individual-notice"), ("data_privacy_officer", "individual-notice")}
    if agencies:
        expected.add(("legal", "consumer-reporting-agencies"))
    assert set(got) == expected
    notice = got[("legal", "individual-notice")]
    # 45 days of real time across the November change: 09:00 CST on the wall clock.
    assert notice.due_at == datetime(2026, 11, 4, 15, 0, tzinfo=UTC)
    assert notice.rules == ("wi-134-98/notify-individuals-45d",)
    assert [c.section for c in notice.citations] == ["(3)(a) Timing of notice"]
    assert [str(p.email) for p in notice.recipients] == ["attorney@city.example"]
    assert notice.action is not None
    assert "no later than 45 days after the City learned of the acquisition" in notice.action
    assert "knows of the unauthorized acquisition of personal information" in notice.action
    assert "by mail or by a method the City has previously used" in notice.action
    if agencies:
        cra = got[("legal", "consumer-reporting-agencies")]
        # Its own obligation: its own deadline, reminders, citation, action and reading.
        assert cra.due_at == datetime(2026, 11, 4, 15, 0, tzinfo=UTC)
        assert cra.rules == ("wi-134-98/consumer-reporting-agencies",)
        assert [c.section for c in cra.citations] == [
            "(2)(br) Notice to consumer reporting agencies"
        ]
        assert cra.reminders == (
            cra.due_at - timedelta(days=7),
            cra.due_at - timedelta(days=2),
        )
        assert notice.reminders == (
            notice.due_at - timedelta(days=14),
            notice.due_at - timedelta(days=7),
            notice.due_at - timedelta(days=2),
        )
        assert cra.action is not None
        assert "timing, distribution and content of the notices" in cra.action
        assert cra.interpretation is not None
        assert cra.interpretation.startswith("“without unreasonable delay” read as 45 days")
        assert notice.interpretation is None
        assert cra.escalation == () and notice.escalation != ()


@pytest.mark.parametrize(("affected", "ag"), [(500, False), (501, True), (None, False)])
def test_california_notice_30_days_and_attorney_general_over_500(
    affected: int | None, ag: bool
) -> None:
    confirmed = datetime.fromisoformat("2026-10-15T10:00:00-07:00")
    packs = [load_pack(pack_path("san-jose")), load_pack(pack_path("ca-breach-notice"))]
    plan = plan_for(
        _report(affected),
        packs,
        DIRECTORY,
        confirmed,
        trigger="personal_information_acquired",
        since=confirmed,
    )
    got = _by_duty(plan)
    expected = {("legal", "resident-notice"), ("cdpo", "resident-notice")}
    if ag:
        expected.add(("legal", "attorney-general-sample"))
    assert set(got) == expected
    assert got[("cdpo", "resident-notice")].due_at == datetime(2026, 11, 14, 17, 0, tzinfo=UTC)
    notice = got[("legal", "resident-notice")]
    assert notice.due_at == datetime(2026, 11, 14, 17, 0, tzinfo=UTC)
    assert notice.rules == ("ca-breach-notice/notify-residents-30d",)
    assert plan.opens == frozenset()


def test_california_600_residents_two_legal_obligations_each_complete() -> None:
    """The sample copy to the Attorney General is not folded into the residents' notice: one
    acknowledgement cannot close both, and neither loses its reminders or its reading."""
    confirmed = datetime.fromisoformat("2026-10-15T10:00:00-07:00")
    packs = [load_pack(pack_path("san-jose")), load_pack(pack_path("ca-breach-notice"))]
    plan = plan_for(
        _report(600),
        packs,
        DIRECTORY,
        confirmed,
        trigger="personal_information_acquired",
        since=confirmed,
    )
    got = _by_duty(plan)
    notice, sample = got[("legal", "resident-notice")], got[("legal", "attorney-general-sample")]

    assert notice.due_at == datetime(2026, 11, 14, 17, 0, tzinfo=UTC)  # 30 days
    assert sample.due_at == datetime(2026, 11, 29, 17, 0, tzinfo=UTC)  # 30 + 15 days
    assert notice.rules == ("ca-breach-notice/notify-residents-30d",)
    assert sample.rules == ("ca-breach-notice/attorney-general-sample",)
    assert [c.section for c in notice.citations] == ["(a)(2), as amended by SB 446 (2025)"]
    assert [c.section for c in sample.citations] == ["(f), as amended by SB 446 (2025)"]
    assert notice.citations[0].document == sample.citations[0].document
    assert notice.citations[0].document == "California Civil Code § 1798.82"
    assert notice.reminders == tuple(notice.due_at - timedelta(days=d) for d in (10, 3, 1))
    assert sample.reminders == tuple(sample.due_at - timedelta(days=d) for d in (7, 2))
    assert notice.interpretation is None
    assert sample.interpretation is not None
    assert sample.interpretation.startswith("“after resident notice” read as 45 days")
    assert [lvl.notify for lvl in notice.escalation] == [[Role.CIO]]
    assert sample.escalation == ()

    assert notice.action is not None and sample.action is not None
    for words in (
        "most expedient time possible",
        "no later than 30 calendar days",
        '"Notice of Data Breach"',
        '"What Happened"',
        '"What Information Was Involved"',
        '"What We Are Doing"',
        '"What You Can Do"',
        '"For More Information"',
        "10-point type",
        "types of personal information",
        "date range of the breach",
        "toll-free telephone numbers",
    ):
        assert words in notice.action, words
    assert "Attorney General a single sample copy" in sample.action
    assert "no personally identifiable information" in sample.action
    assert "within 15 days of notifying them" in sample.action


def test_every_statutory_rule_says_what_the_statute_asks() -> None:
    for name in ("ca-breach-notice", "wi-134-98"):
        pack = load_pack(pack_path(name))
        for rule in pack.rules:
            assert rule.action, f"{name}/{rule.id} has no action"
            assert rule.duty, f"{name}/{rule.id} has no duty of its own"
        assert len({r.duty for r in pack.rules}) == len(pack.rules)


def test_security_incidents_are_read_in_hours_not_business_days() -> None:
    """A security incident on a Friday evening cannot wait for Monday (San José, Sacramento)."""
    friday_evening = datetime.fromisoformat("2026-05-22T19:00:00-07:00")
    for name, rule_id, role in (
        ("san-jose", "incident-response", "ciso"),
        ("sacramento", "cybersecurity-incident", "iso"),
    ):
        pack = load_pack(pack_path(name))
        rule = next(r for r in pack.rules if r.id == rule_id)
        assert rule.within.interpretation == "security_incident"
        assert rule.action
        reading = pack.interpretations["security_incident"]
        assert reading.deadline.after == timedelta(hours=4)
        assert "this service's reading" in reading.note
        assert f'"{name}.security_incident"' in reading.note
        report = ReportFacts(
            kind=IncidentKind.SECURITY,
            department="Parks",
            ai_system="x",
            discovered_at=friday_evening,
            reported_at=friday_evening,
        )
        plan = plan_for(report, [pack], DIRECTORY, friday_evening)
        (o,) = [o for o in plan.obligations if o.role.value == role]
        assert o.due_at == friday_evening + timedelta(hours=4)
        assert o.interpretation is not None
        assert o.interpretation.startswith("“security incident” read as 4 hours from discovery")

    (pack,) = apply_interpretations(
        [load_pack(pack_path("san-jose"))], {"san-jose.security_incident": "PT1H"}
    )
    assert pack.interpretations["security_incident"].deadline.after == timedelta(hours=1)


def test_every_interpretation_note_says_it_is_this_services_reading() -> None:
    for name in available_packs():
        for word, reading in load_pack(pack_path(name)).interpretations.items():
            assert "this service" in reading.note.lower(), f"{name}.{word}"
            assert "per deployment" in reading.note, f"{name}.{word}"


def test_milwaukee_layering_is_stated_as_an_interpretation() -> None:
    pack = load_pack(pack_path("milwaukee-pd"))
    assert pack.layers_on == "wisconsin-city"
    assert pack.layers_on_note is not None
    assert "Milwaukee" in pack.layers_on_note
    assert "this service's interpretation" in pack.layers_on_note
    assert "layers_on" in pack.layers_on_note


def test_statutory_rules_do_not_fire_on_the_report() -> None:
    packs = [load_pack(pack_path("san-jose")), load_pack(pack_path("ca-breach-notice"))]
    now = datetime.fromisoformat("2026-09-01T11:00:00-07:00")
    plan = plan_for(_report(5000), packs, DIRECTORY, now)
    assert all(not r.startswith("ca-breach-notice/") for o in plan.obligations for r in o.rules)


def test_override_replaces_reading_and_says_so() -> None:
    packs = apply_interpretations([load_pack(pack_path("san-jose"))], {"san-jose.promptly": "PT4H"})
    now = datetime.fromisoformat("2026-03-10T09:00:00-07:00")
    report = ReportFacts(
        kind=IncidentKind.UNAUTHORIZED_TOOL,
        department="Parks",
        ai_system="x",
        discovered_at=now,
        reported_at=now,
    )
    (triage,) = plan_for(report, packs, DIRECTORY, now).obligations
    assert triage.due_at == datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    assert triage.interpretation is not None
    assert "“promptly” read as 4 hours from discovery" in triage.interpretation
    assert "overridden by this deployment (INCIDENTS_INTERPRETATIONS)" in triage.interpretation
    assert "the end of the next business day" in triage.interpretation


def test_override_with_business_days() -> None:
    (pack,) = apply_interpretations(
        [load_pack(pack_path("redondo-beach"))], {"redondo-beach.immediately": "2"}
    )
    assert pack.interpretations["immediately"].deadline.business_days == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "san-jose.promptyl",
            "PT4H",
            "has no interpretation 'promptyl' (it has: no_time_stated, promptly, "
            "security_incident)",
        ),
        ("sanjose.promptly", "PT4H", "must be '<pack>.<word>' naming an active pack"),
        ("san-jose.promptly", "4 hours", "neither an ISO 8601 duration"),
        ("san-jose.promptly", "PT0H", "neither an ISO 8601 duration"),
    ],
)
def test_bad_override_is_an_error(key: str, value: str, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        apply_interpretations([load_pack(pack_path("san-jose"))], {key: value})


def test_a_packs_calendar_joins_its_public_holidays_and_the_deployments_own() -> None:
    calendar = calendar_for(load_pack(pack_path("san-jose")), [date(2026, 12, 24)])
    assert calendar.name_of(date(2026, 11, 26)) == "Thanksgiving Day"  # California's calendar
    assert calendar.name_of(date(2026, 11, 27)) == "Day After Thanksgiving"
    assert calendar.name_of(date(2026, 3, 31)) == "Cesar Chavez Day"
    assert date(2026, 12, 24) in calendar  # the deployment's INCIDENTS_HOLIDAYS
    assert date(2026, 12, 23) not in calendar
    # A public holiday the city works (the pack's open_on) is a business day after all.
    assert date(2028, 2, 15) not in calendar
    assert date(2028, 2, 15) in calendar_for(
        load_pack(pack_path("san-jose")).model_copy(update={"open_on": []})
    )


def test_describe_pack_in_plain_words() -> None:
    described = describe_pack(load_pack(pack_path("san-jose")))
    harm = next(r for r in described["rules"] if r["id"] == "harm-24h")
    assert harm["text"].startswith(
        "When a report concerns harm caused by AI, tell the reporter's supervisor, the City "
        "Digital Privacy Officer (CDPO) and the Office of Employee Relations within 24 hours "
        "from discovery."
    )
    assert harm["citation"]["section"] == "Prohibited Uses"
    assert described["triage"]["text"].startswith("When no rule matches a report, tell the Chief")
    legal = describe_pack(load_pack(pack_path("wi-134-98")))
    assert "affecting 1,000 or more people" in legal["rules"][1]["text"]
    assert "from that confirmation" in legal["rules"][0]["text"]


def test_obligation_json_marks_late_and_keeps_every_citation() -> None:
    now = datetime.fromisoformat("2026-03-09T08:00:00-05:00")
    report = ReportFacts(
        kind=IncidentKind.DATA_EXPOSURE,
        department="Police",
        ai_system="x",
        discovered_at=datetime.fromisoformat("2026-03-06T16:30:00-06:00"),
        reported_at=now,
        data_categories=frozenset({DataCategory.CJI}),
    )
    plan = plan_for(report, [load_pack(pack_path("wisconsin-city"))], DIRECTORY, now)
    it = next(o for o in plan.obligations if o.role.value == "it_department")
    out = obligation_json(it, id="ob-1", status="open")
    assert out["late"] is True and out["id"] == "ob-1" and out["status"] == "open"
    assert out["due_at"] == "2026-03-07T02:30:00+00:00"
    assert out["due_at_local"] == "2026-03-06T20:30:00-06:00"
    assert [c["section"] for c in out["citations"]] == ["III.b Procedure", "III.c Procedure"]
    assert out["interpretation"].startswith("“immediately” read as 4 hours from discovery")


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("**", "")
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip()


def test_every_quote_is_verbatim_from_its_seed() -> None:
    for name in available_packs():
        pack = load_pack(pack_path(name))
        cites = [r.citation for r in pack.rules] + ([pack.triage.citation] if pack.triage else [])
        for c in cites:
            seed = SEEDS / c.file
            if not seed.exists():
                continue  # a statute, quoted from its official text
            assert _plain(c.quote) in _plain(seed.read_text(encoding="utf-8")), (name, c.section)
