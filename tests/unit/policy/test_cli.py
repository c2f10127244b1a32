"""`incidents policy check | list | explain` through typer's runner, as an administrator runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from incidents.cli.policy import policy_app
from incidents.policy.loader import PACKS_DIR, PolicyError, load_pack

runner = CliRunner()
SACRAMENTO = (PACKS_DIR / "sacramento.yaml").read_text(encoding="utf-8")


def _broken(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def unknown_role(tmp_path: Path) -> Path:
    return _broken(
        tmp_path,
        "role",
        SACRAMENTO.replace("notify: [supervisor, cio]", "notify: [supervisor, cio0]"),
    )


@pytest.fixture
def bad_duration(tmp_path: Path) -> Path:
    text = SACRAMENTO.replace("deadline: { business_days: 1 }", "deadline: { after: 24 hours }", 1)
    return _broken(tmp_path, "duration", text)


@pytest.fixture
def no_citation(tmp_path: Path) -> Path:
    head, tail = SACRAMENTO.split("  - id: cybersecurity-incident")
    head = head[: head.rindex("    citation:")]
    return _broken(tmp_path, "citation", head + "  - id: cybersecurity-incident" + tail)


def test_loader_names_file_rule_and_fix_for_unknown_role(unknown_role: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_pack(unknown_role)
    msg = str(err.value)
    assert str(unknown_role) in msg
    assert "rules[0] (malfunction-promptly).notify[1]" in msg
    assert "'cio0' is not a word this service knows here" in msg
    assert "'cio'" in msg and "'data_privacy_officer'" in msg


def test_loader_explains_how_to_write_a_duration(bad_duration: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_pack(bad_duration)
    msg = str(err.value)
    assert "interpretations.promptly.deadline.after" in msg
    assert "'24 hours' is not a duration" in msg and "PT24H" in msg


def test_loader_asks_for_a_citation(no_citation: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_pack(no_citation)
    msg = str(err.value)
    assert "rules[0] (malfunction-promptly).citation" in msg
    assert "every rule must cite the policy it encodes" in msg


@pytest.mark.parametrize("fixture", ["unknown_role", "bad_duration", "no_citation"])
def test_check_exits_1_with_the_loaders_message(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(fixture)
    result = runner.invoke(policy_app, ["check", str(path)])
    assert result.exit_code == 1
    with pytest.raises(PolicyError) as err:
        load_pack(path)
    assert str(err.value) in result.output


def test_check_passes_every_shipped_pack() -> None:
    files = sorted(str(p) for p in PACKS_DIR.glob("*.yaml"))
    result = runner.invoke(policy_app, ["check", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok: ") == len(files)


def test_list_shows_every_pack() -> None:
    result = runner.invoke(policy_app, ["list"])
    assert result.exit_code == 0
    for name in (
        "san-jose",
        "sacramento",
        "redondo-beach",
        "wisconsin-city",
        "milwaukee-pd",
        "wi-134-98",
        "ca-breach-notice",
    ):
        assert name in result.output
    assert "layers on wisconsin-city for Police" in result.output


REPORT = """
kind: harm
title: Chatbot refused a benefits claim
description: The chatbot told a resident they were not eligible.
discovered_at: "2026-03-07T10:00:00-08:00"
reporter: {name: Alex, email: alex@city.example, department: Parks}
ai_system: Benefits Chatbot
"""


def test_explain_json_is_the_api_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCIDENTS_INTERPRETATIONS", raising=False)
    monkeypatch.delenv("INCIDENTS_HOLIDAYS", raising=False)
    report = tmp_path / "r.yaml"
    report.write_text(REPORT, encoding="utf-8")
    result = runner.invoke(
        policy_app,
        [
            "explain",
            "--policy",
            "san-jose",
            "--report",
            str(report),
            "--now",
            "2026-03-07T12:00:00-08:00",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [o["role"] for o in out["obligations"]] == ["cdpo", "employee_relations", "supervisor"]
    first = out["obligations"][0]
    assert set(first) == {
        "id",
        "role",
        "recipients",
        "due_at",
        "due_at_local",
        "timezone",
        "status",
        "rule",
        "rules",
        "citation",
        "citations",
        "interpretation",
        "holidays",
        "action",
        "duty",
        "late",
    }
    assert first["due_at"] == "2026-03-08T18:00:00+00:00"
    assert first["due_at_local"] == "2026-03-08T11:00:00-07:00"
    assert first["rule"] == "san-jose/harm-24h"
    assert first["late"] is False
    assert first["citations"][0]["file"] == "004_cdd0e18fc1bc8463.txt"
    # The citation names the document as people do, and links to the quoted passage.
    assert first["citations"][0]["document"] == "San José Policy 1.7.12, Artificial Intelligence"
    assert first["citations"][0]["link"] == "/policies/san-jose/source#harm-24h"


def test_explain_text_shows_local_and_utc_and_interpretation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENTS_INTERPRETATIONS", '{"wisconsin-city.no_time_stated": "2"}')
    monkeypatch.delenv("INCIDENTS_HOLIDAYS", raising=False)
    report = tmp_path / "r.json"
    report.write_text(
        json.dumps(
            {
                "kind": "harm",
                "title": "t",
                "description": "d",
                "discovered_at": "2026-03-06T16:00:00-06:00",
                "reporter": {"name": "A", "email": "a@city.example", "department": "Parks"},
                "ai_system": "Records Summarizer",
            }
        ),
        encoding="utf-8",
    )
    result = runner.invoke(
        policy_app,
        [
            "explain",
            "--policy",
            "wisconsin-city",
            "--report",
            str(report),
            "--now",
            "2026-03-06T16:05:00-06:00",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wisconsin-city/triage" in result.output
    assert "Tue 2026-03-10 17:00 CDT (America/Chicago)" in result.output
    assert "2026-03-10 22:00 UTC" in result.output
    assert "overridden by this deployment" in result.output


def test_explain_rejects_a_naive_time(tmp_path: Path) -> None:
    report = tmp_path / "r.yaml"
    report.write_text(REPORT, encoding="utf-8")
    result = runner.invoke(
        policy_app,
        ["explain", "--policy", "san-jose", "--report", str(report), "--now", "2026-03-07T12:00"],
    )
    assert result.exit_code == 1
    assert "needs a UTC offset" in result.output


EXPOSURE = """
kind: data_exposure
title: Summaries leaked another resident's address
description: The summarizer put one resident's address into another's letter.
discovered_at: "2026-05-01T08:00:00-07:00"
reporter: {name: Alex, email: alex@city.example, department: Parks}
ai_system: Records Summarizer
data_categories: [pii]
"""


def _explain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, policy: str, *extra: str
) -> str:
    for name in ("INCIDENTS_INTERPRETATIONS", "INCIDENTS_HOLIDAYS", "INCIDENTS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    report = tmp_path / "r.yaml"
    report.write_text(body, encoding="utf-8")
    result = runner.invoke(
        policy_app,
        [
            "explain",
            "--policy",
            policy,
            "--report",
            str(report),
            "--now",
            "2026-05-01T13:00:00-07:00",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_explain_text_shows_the_case_its_page_and_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _explain(tmp_path, monkeypatch, EXPOSURE, "redondo-beach")
    case = out[out.index("Security case:") :]
    assert case.startswith("Security case: opened by redondo-beach/data-incident-immediately")
    assert "plan:     Cybersecurity incident response plan" in case
    assert "owner:    the IT Department [it_department]" in case
    assert "severity: high, because personal information (PII) is involved" in case
    # A Friday at 13:00: business hours, so the CISO is on call; the chain follows.
    assert "1. now: security on call [security_on_call]" in case
    assert "to:  Sam Secure (CISO) <ciso@city.example>" in case
    assert "ack: by Fri 2026-05-01 13:15 PDT (2026-05-01 20:15 UTC)" in case
    assert "2. from Fri 2026-05-01 13:15 PDT: the security on-call backup [security_backup]" in case
    assert "to:  Information Security Officer <iso@city.example>" in case
    assert "4. from Fri 2026-05-01 14:00 PDT: the Chief Information Officer (CIO)" in case
    assert "task(s) of the response plan:" in case
    # Each task: title, owner role, due in local time and UTC, citation.
    contain = case[case.index("Contain the AI system") :]
    contain = contain[: contain.index("\n\nT")]
    assert "owner: the IT Department [it_department]" in contain
    assert "due:   Fri 2026-05-01 17:00 PDT (America/Los_Angeles)" in contain
    assert "2026-05-02 00:00 UTC" in contain
    assert "task:  redondo-beach/contain-ai-system" in contain
    assert (
        "cites: Redondo Beach APP 04.05, Artificial Intelligence Policy, “IV.4 Incident "
        "Response and Reporting”" in contain
    )
    assert "Post-incident review and lessons learned" in case
    assert "Report to the agency's CJIS contact" not in case  # no CJI in this report


def test_explain_json_has_the_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = EXPOSURE.replace("data_categories: [pii]", "data_categories: [pii, cji]")
    out = json.loads(_explain(tmp_path, monkeypatch, body, "wisconsin-city", "--json"))
    case = out["case"]
    assert case["plans"] == [
        "Suspected data breach response (IT Department and Data Privacy Officer)"
    ]
    assert case["owner"] == "it_department"
    assert case["severity"] == "critical"
    assert case["because"] == [
        "personal information (PII) is involved",
        "criminal justice information (CJI) is involved",
    ]
    assert case["rules"] == [
        "wisconsin-city/suspected-breach-immediately",
        "wisconsin-city/cjis-data",
    ]
    # Each passage once, though the plan and a rule cite the same sentence.
    assert [c["section"] for c in case["citations"]] == ["III.b Procedure", "III.c Procedure"]
    page = case["page"]
    assert page["role"] == "security_on_call" and page["recipients"] == ["ciso@city.example"]
    assert page["due_at"] == "2026-05-01T20:15:00+00:00"
    assert [(s["step"], s["roles"], s["recipients"]) for s in page["chain"]][:4] == [
        (1, ["security_on_call"], ["ciso@city.example"]),
        (2, ["security_backup"], ["iso@city.example"]),
        (3, ["ciso"], ["ciso@city.example"]),
        (4, ["cio"], ["cio@city.example"]),
    ]
    # Then once more from the top (the roster's `repeat: 1`).
    assert [s["roles"] for s in page["chain"][4:]] == [s["roles"] for s in page["chain"][:4]]
    assert page["chain"][1]["opens_at"] == page["due_at"]
    assert page["chain"][3]["due_at_local"] == "2026-05-01T17:00:00-05:00"  # 2 hours on
    first = case["tasks"][0]
    assert first["task"] == "wisconsin-city/cjis-report-1h"
    assert first["title"] == "Report to the agency's CJIS contact within one hour"
    assert first["required"] is True
    assert first["role"] == "it_department"
    assert first["due_at"] == "2026-05-01T21:00:00+00:00"
    assert first["due_at_local"] == "2026-05-01T16:00:00-05:00"
    assert first["citations"][0]["section"] == "III.c Procedure"
    assert first["citations"][0]["document"] == "AI & LLM Acceptable Use Policy (a Wisconsin city)"
    assert first["duty"] == "case-task:wisconsin-city/cjis-report-1h"
    tasks = {t["task"].split("/")[1]: t for t in case["tasks"]}
    # 20 business days, Memorial Day skipped.
    assert tasks["lessons-learned"]["due_at_local"] == "2026-06-01T17:00:00-05:00"
    assert tasks["lessons-learned"]["holidays"] == ["Memorial Day, Mon 25 May 2026"]
    assert tasks["breach-notice-decision"]["role"] == "data_privacy_officer"


def test_explain_says_when_no_case_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _explain(tmp_path, monkeypatch, REPORT, "san-jose")
    assert "Security case: none (no rule this report matches opens one)" in text
    out = json.loads(_explain(tmp_path, monkeypatch, REPORT, "san-jose", "--json"))
    assert out["case"] is None


def test_explain_plans_no_case_for_a_later_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _explain(
        tmp_path,
        monkeypatch,
        EXPOSURE,
        "san-jose,ca-breach-notice",
        "--trigger",
        "personal_information_acquired",
        "--since",
        "2026-05-01T13:00:00-07:00",
        "--json",
    )
    assert json.loads(out)["case"] is None


PILOT_SECURITY = """
kind: security
title: Permit Assistant sent applicants' files to an unknown address
description: The pilot's connector posted uploaded files to a host nobody recognises.
discovered_at: "2026-05-01T08:00:00-07:00"
reporter: {name: Alex, email: alex@city.example, department: Parks}
ai_system: Permit Assistant
"""

MALFUNCTION = """
kind: malfunction
title: Chatbot quoted last year's fees
description: The chatbot quoted fees from the 2025 schedule.
discovered_at: "2026-05-01T08:00:00-07:00"
reporter: {name: Alex, email: alex@city.example, department: Parks}
ai_system: Benefits Chatbot
"""


def test_explain_text_shows_the_review_a_rule_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _explain(tmp_path, monkeypatch, MALFUNCTION, "san-jose")
    review = out[out.index("Sunset review") :]
    assert review.startswith(
        "Sunset review of 'Benefits Chatbot': opened by rule san-jose/sunset-halt"
    )
    assert "decider: the Chief Information Officer (CIO) / IT Director [cio]" in review
    assert "to:      Chris Info (Chief Information Officer) <cio@city.example>" in review
    assert "decide:  by the end of 5 business days after the report" in review
    assert "halt:    not at once" in review
    assert "ownership of the data, future access to the data, portability" in review
    assert (
        "cites: San José Policy 1.7.12, Artificial Intelligence, “Sunset Procedures”: “If the "
        "abrupt cessation" in review
    )


def test_explain_text_shows_a_pilot_halted_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _explain(tmp_path, monkeypatch, PILOT_SECURITY, "redondo-beach")
    review = out[out.index("Sunset review") :]
    assert review.startswith(
        "Sunset review of 'Permit Assistant': opened by rule redondo-beach/pilot-halt"
    )
    assert "halt:    yes: the system is halted as the review opens" in review
    assert "plan:" not in review  # APP 04.05 names nothing a phase-out plan must address
    assert "“IV.7 Experimental Use and Proof of Concepts”" in review


def test_explain_text_counts_a_harm_report_towards_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _explain(tmp_path, monkeypatch, REPORT, "san-jose")
    review = out[out.index("Sunset review") :]
    assert review.startswith(
        "Sunset review: none opened; the report counts towards a review of 'Benefits Chatbot':"
    )
    assert "san-jose: 1 of 3 within 30 days (reports of harm, malfunction" in review
    assert "ceases to provide a positive outcome" in review
    assert "Earlier reports about the same system within the window count too" in review


def test_explain_says_when_no_review_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _explain(tmp_path, monkeypatch, EXPOSURE, "san-jose")
    assert "Sunset review: none (no rule this report matches opens one" in out
    body = json.loads(_explain(tmp_path, monkeypatch, EXPOSURE, "san-jose", "--json"))
    assert body["review"] is None


def test_explain_json_has_the_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.loads(_explain(tmp_path, monkeypatch, PILOT_SECURITY, "redondo-beach", "--json"))
    review = body["review"]
    assert review["counts_towards"] == []
    assert review["earlier_reports_counted"] is False
    opens = review["opens"]
    assert opens["pack"] == "redondo-beach"
    assert opens["decider"] == "it_director"
    assert opens["opened_by"] == "rule:redondo-beach/pilot-halt"
    assert opens["halt"] is True
    assert opens["plan_sections"] == []
    assert opens["decide_within"].startswith("by the end of 5 business days after the report")
    assert [c["document"] for c in opens["citations"]] == [
        "Redondo Beach APP 04.05, Artificial Intelligence Policy"
    ] * 2
    assert "halt any experimental AI use" in opens["citations"][0]["quote"]
    # The report obligations say the same thing opens.
    assert "sunset_review" in body["opens"]


def test_explain_json_counts_towards_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.loads(_explain(tmp_path, monkeypatch, REPORT, "san-jose", "--json"))
    review = body["review"]
    assert review["opens"] is None
    assert review["counts_towards"] == [
        {
            "pack": "san-jose",
            "counted": 1,
            "count": 3,
            "within": "30 days",
            "kinds": ["harm", "malfunction", "inaccurate_output", "discriminatory_output"],
            "citation": review["counts_towards"][0]["citation"],
        }
    ]
    assert review["counts_towards"][0]["citation"]["section"] == "Sunset Procedures"
    assert review["note"].startswith("Earlier reports about the same system")


def test_explain_plans_no_review_for_a_later_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _explain(
        tmp_path,
        monkeypatch,
        EXPOSURE,
        "san-jose,ca-breach-notice",
        "--trigger",
        "personal_information_acquired",
        "--since",
        "2026-05-01T13:00:00-07:00",
    )
    assert "Sunset review" not in out
