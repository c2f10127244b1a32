"""`review_for`: which sunset review a report opens, or which thresholds it counts towards, under
the shipped packs and the demo directory."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from incidents.kernel.vocabulary import DataCategory, IncidentKind, Role
from incidents.policy import ReportFacts, load_directory
from incidents.policy.loader import DEMO_DIRECTORY, available_packs, load_pack, pack_path
from incidents.policy.reviews import Counting, review_for
from incidents.policy.schema import Pack

DIRECTORY = load_directory(DEMO_DIRECTORY)
# The seed policies as the service ships them (the packs cite these copies).
SEEDS = Path(__file__).resolve().parents[3] / "incidents" / "policy" / "sources"
NOW = datetime.fromisoformat("2026-05-22T14:30:00-07:00")
SAN_JOSE = [load_pack(pack_path("san-jose"))]
REDONDO = [load_pack(pack_path("redondo-beach"))]


def _report(
    kind: str,
    system: str = "Benefits Chatbot",
    department: str = "Parks",
    data: tuple[str, ...] = (),
) -> ReportFacts:
    return ReportFacts(
        kind=IncidentKind(kind),
        department=department,
        ai_system=system,
        discovered_at=NOW - timedelta(minutes=30),
        reported_at=NOW,
        data_categories=frozenset(DataCategory(d) for d in data),
    )


def test_san_jose_malfunction_opens_the_rules_review_for_the_cio() -> None:
    review, counting = review_for(_report("malfunction"), SAN_JOSE, DIRECTORY, NOW)
    assert review is not None
    assert review.pack == "san-jose"
    assert review.decider == Role.CIO
    assert review.opened_by == "rule:san-jose/sunset-halt"
    assert review.halt is False  # the review decides whether the system "ceases to provide …"
    assert [c.section for c in review.citations] == ["Sunset Procedures", "Sunset Procedures"]
    assert "halt the use of that system" in review.citations[0].quote
    assert "phased out approach must be approved by the CIO" in review.citations[1].quote
    assert counting == []


@pytest.mark.parametrize("kind", ["inaccurate_output", "discriminatory_output"])
def test_san_jose_failing_output_opens_the_review_too(kind: str) -> None:
    review, _ = review_for(_report(kind), SAN_JOSE, DIRECTORY, NOW)
    assert review is not None and review.opened_by == "rule:san-jose/sunset-halt"


def test_san_jose_third_harm_report_crosses_the_threshold() -> None:
    review, counting = review_for(
        _report("harm"), SAN_JOSE, DIRECTORY, NOW, recent_kinds=["harm", "harm"]
    )
    assert review is not None
    assert review.opened_by == "threshold:san-jose"
    assert review.decider == Role.CIO
    assert review.halt is False
    assert review.reason.startswith("3 reports of")
    assert "ceases to provide a positive outcome" in review.citations[0].quote
    assert counting == []


def test_san_jose_second_harm_report_counts_two_of_three() -> None:
    review, counting = review_for(_report("harm"), SAN_JOSE, DIRECTORY, NOW, recent_kinds=["harm"])
    assert review is None
    assert counting == [Counting(pack="san-jose", counted=2, count=3)]


def test_san_jose_only_the_thresholds_kinds_count() -> None:
    # A data exposure and a prohibited use about the system are not signs it has stopped working.
    review, counting = review_for(
        _report("harm"),
        SAN_JOSE,
        DIRECTORY,
        NOW,
        recent_kinds=["data_exposure", "prohibited_use", "malfunction"],
    )
    assert review is None
    assert counting == [Counting(pack="san-jose", counted=2, count=3)]


def test_san_jose_threshold_is_three_within_thirty_days() -> None:
    plan = SAN_JOSE[0].sunset
    assert plan is not None and plan.threshold is not None
    assert plan.threshold.count == 3
    assert plan.threshold.within == timedelta(days=30)
    assert {k.value for k in plan.threshold.kinds} == {
        "harm",
        "malfunction",
        "inaccurate_output",
        "discriminatory_output",
    }
    assert plan.halt_at_once == []
    assert plan.plan_sections == [
        "data_ownership",
        "data_access",
        "portability",
        "impact_services",
        "impact_users",
        "impact_residents",
    ]
    assert plan.decide_within.business_days == 5
    assert plan.decide_within.from_ == "report"


def test_redondo_security_report_on_a_pilot_halts_it_as_the_review_opens() -> None:
    review, counting = review_for(
        _report("security", system="Permit Assistant"), REDONDO, DIRECTORY, NOW
    )
    assert review is not None
    assert review.pack == "redondo-beach"
    assert review.opened_by == "rule:redondo-beach/pilot-halt"
    assert review.decider == Role.IT_DIRECTOR  # the City's AI Policy Authority
    assert review.halt is True
    assert [c.section for c in review.citations] == [
        "IV.7 Experimental Use and Proof of Concepts",
        "IV.7 Experimental Use and Proof of Concepts",
    ]
    assert counting == []


def test_redondo_security_report_on_a_production_system_opens_no_review() -> None:
    # No threshold in the Redondo pack: its policy names no pattern of failures.
    review, counting = review_for(_report("security"), REDONDO, DIRECTORY, NOW)
    assert (review, counting) == (None, [])
    assert REDONDO[0].sunset is not None and REDONDO[0].sunset.threshold is None


@pytest.mark.parametrize(
    ("kind", "packs"),
    [
        ("data_exposure", SAN_JOSE),
        ("prohibited_use", SAN_JOSE),
        ("malfunction", REDONDO),
        ("harm", [load_pack(pack_path("sacramento"))]),
    ],
    ids=["san-jose data exposure", "san-jose prohibited use", "redondo malfunction", "sacramento"],
)
def test_a_report_that_matches_nothing_gives_nothing(kind: str, packs: list[Pack]) -> None:
    assert review_for(_report(kind), packs, DIRECTORY, NOW) == (None, [])


def test_a_department_pack_only_applies_to_its_departments() -> None:
    # milwaukee-pd has no sunset section; the city pack under it has none either.
    packs = [load_pack(pack_path("wisconsin-city")), load_pack(pack_path("milwaukee-pd"))]
    assert review_for(_report("malfunction", department="Police"), packs, DIRECTORY, NOW) == (
        None,
        [],
    )


def test_every_pack_with_a_reviewing_rule_has_a_sunset_section() -> None:
    for name in available_packs():
        pack = load_pack(pack_path(name))
        if any("sunset_review" in r.opens for r in pack.rules):
            assert pack.sunset is not None, name


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("**", "")
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip()


def test_every_sunset_quote_is_verbatim_from_its_seed() -> None:
    for name in available_packs():
        plan = load_pack(pack_path(name)).sunset
        if plan is None:
            continue
        cites = [("sunset", plan.citation)]
        if plan.threshold is not None:
            cites.append(("threshold", plan.threshold.citation))
        for what, c in cites:
            seed = SEEDS / c.file
            assert seed.exists(), (name, what, c.file)
            assert _plain(c.quote) in _plain(seed.read_text(encoding="utf-8")), (name, what)
