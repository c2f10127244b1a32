"""A broken policy set-up stops start-up with a message that names the file and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INCIDENTS = str(Path(sys.executable).parent / "incidents")


def start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    environ.update(INCIDENTS_HOME=str(tmp_path / "home"), **env)
    return subprocess.run(
        [INCIDENTS, "serve", "--port", "1"],  # never reached: start-up must fail first
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unknown_policy_pack_stops_start_up(tmp_path):
    done = start(tmp_path, INCIDENTS_POLICY="san-jose,springfield")
    assert done.returncode == 2
    assert "springfield.yaml" in done.stderr
    assert "no such policy pack 'springfield'" in done.stderr
    assert "san-jose" in done.stderr  # the packs that do exist are listed
    assert "Traceback" not in done.stderr


def test_a_broken_directory_file_stops_start_up(tmp_path):
    directory = tmp_path / "people.yaml"
    directory.write_text(
        "organisation: Test\n"
        "fallback: [{name: Desk, email: desk@city.example}]\n"
        "roles:\n  cdpo: [{name: Casey, email: not-an-email}]\n"
    )
    done = start(tmp_path, INCIDENTS_DIRECTORY=str(directory))
    assert done.returncode == 2
    assert str(directory) in done.stderr
    assert "roles.cdpo[0].email" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_directory_file_that_is_not_yaml_stops_start_up(tmp_path):
    directory = tmp_path / "people.yaml"
    directory.write_text("roles: [unclosed\n")
    done = start(tmp_path, INCIDENTS_DIRECTORY=str(directory))
    assert done.returncode == 2
    assert f"{directory}: not valid YAML" in done.stderr


async def test_the_first_report_after_start_is_accepted(tmp_path):
    """A web instance just started, with nothing else run in it yet, files the first report it
    gets (it once answered 500: the ORM was set up only by the first query)."""
    import aiohttp

    from tests.harness.kafka import free_port
    from tests.support import ServiceProcess, harm_report

    service = ServiceProcess({"INCIDENTS_HOME": str(tmp_path / "home")}, free_port(), role="web")
    await service.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{service.url}/api/v1/reports", json=harm_report()) as resp,
        ):
            assert resp.status == 201, await resp.text()
            assert (await resp.json())["reference"].startswith("AI-")
    finally:
        service.stop()
