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
