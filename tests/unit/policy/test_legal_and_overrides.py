"""Statutory clocks opened by a later confirmation, deployment overrides, holidays, plain words."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from incidents.kernel.vocabulary import DataCategory, IncidentKind
from incidents.policy import PolicyError, ReportFacts, load_directory, plan_for
from incidents.policy.loader import DEMO_DIRECTORY, available_packs, load_pack, pack_path
from incidents.policy.overrides import apply_interpretations, holiday_set
from incidents.policy.presentation import describe_pack, obligation_json

DIRECTORY = load_directory(DEMO_DIRECTORY)
SEEDS = Path("/work/shared/seeds")


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


@pytest.mark.parametrize(
    ("affected", "legal_rules"),
    [
        (None, ("wi-134-98/notify-individuals-45d",)),
        (999, ("wi-134-98/notify-individuals-45d",)),
        (1000, ("wi-134-98/notify-individuals-45d", "wi-134-98/consumer-reporting-agencies")),
    ],
)
def test_wisconsin_notice_45_days_after_confirmation(
    affected: int | None, legal_rules: tuple[str, ...]
) -> None:
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
    by_role = {o.role.value: o for o in plan.obligations}
    assert set(by_role) == {"legal", "data_privacy_officer"}
    # 45 days of real time across the November change: 09:00 CST on the wall clock.
    assert by_role["legal"].due_at == datetime(2026, 11, 4, 15, 0, tzinfo=UTC)
    assert by_role["legal"].rules == legal_rules
    assert len(by_role["legal"].citations) == len(legal_rules)
    assert [str(p.email) for p in by_role["legal"].recipients] == ["attorney@city.example"]


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
    by_role = {o.role.value: o for o in plan.obligations}
    assert set(by_role) == {"legal", "cdpo"}
    assert by_role["cdpo"].due_at == datetime(2026, 11, 14, 17, 0, tzinfo=UTC)
    expected = ("ca-breach-notice/notify-residents-30d",)
    if ag:
        expected += ("ca-breach-notice/attorney-general-sample",)
    assert by_role["legal"].rules == expected
    assert plan.opens == frozenset()


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
            "has no interpretation 'promptyl' (it has: no_time_stated, promptly)",
        ),
        ("sanjose.promptly", "PT4H", "must be '<pack>.<word>' naming an active pack"),
        ("san-jose.promptly", "4 hours", "neither an ISO 8601 duration"),
        ("san-jose.promptly", "PT0H", "neither an ISO 8601 duration"),
    ],
)
def test_bad_override_is_an_error(key: str, value: str, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        apply_interpretations([load_pack(pack_path("san-jose"))], {key: value})


def test_holiday_set_adds_a_public_calendar() -> None:
    days = holiday_set([date(2026, 12, 24)], country="US", subdivision="CA", years=[2026])
    assert date(2026, 12, 24) in days
    assert date(2026, 11, 26) in days  # Thanksgiving
    assert holiday_set([date(2026, 12, 24)]) == frozenset({date(2026, 12, 24)})


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


@pytest.mark.skipif(not SEEDS.exists(), reason="seed policies not present")
def test_every_quote_is_verbatim_from_its_seed() -> None:
    for name in available_packs():
        pack = load_pack(pack_path(name))
        cites = [r.citation for r in pack.rules] + ([pack.triage.citation] if pack.triage else [])
        for c in cites:
            seed = SEEDS / c.file
            if not seed.exists():
                continue  # a statute, quoted from its official text
            assert _plain(c.quote) in _plain(seed.read_text(encoding="utf-8")), (name, c.section)
