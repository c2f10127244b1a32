"""Start-up stops, with a message saying what to fix, on a broken policy set-up, on web or worker
instances of a shared database without a common secret key, and on a second `incidents serve`
in one data folder."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from infra.db import make_engine
from tests.harness.kafka import free_port
from tests.support import ServiceProcess

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

    from tests.support import harm_report

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


# --- guards a long-running process passes before it starts -------------------------------------


def incidents(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENTS_")}
    environ.update(INCIDENTS_HOME=str(home), **env)
    return subprocess.run(
        [INCIDENTS, *args], env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("role", ["web", "worker"])
async def test_web_and_worker_on_postgresql_refuse_to_start_without_the_secret_key(
    tmp_path, postgres_url, role
):
    args = [role, "--port", "1"] if role == "web" else [role]
    done = incidents(tmp_path / "home", *args, INCIDENTS_DATABASE_URL=postgres_url)
    assert done.returncode == 2
    assert f"INCIDENTS_SECRET_KEY is not set; `incidents {role}` on a shared database" in (
        done.stderr
    )
    assert "a link sent by one instance would be refused by another" in done.stderr
    assert "same value on every web and worker instance" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "secret_key").exists()  # no key of its own was made
    # Refused before connecting: not even the schema was made.
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    assert tables == []


def test_a_blank_secret_key_is_no_key(tmp_path):
    done = incidents(
        tmp_path / "home",
        "worker",
        # Nobody listens there: the refusal comes before any connection.
        INCIDENTS_DATABASE_URL=f"postgresql+asyncpg://incidents:pw@127.0.0.1:{free_port()}/x",
        INCIDENTS_SECRET_KEY="",
    )
    assert done.returncode == 2
    assert "INCIDENTS_SECRET_KEY is not set" in done.stderr
    assert "pw@" not in done.stderr  # the database is named without its password


async def test_one_serve_per_data_folder(tmp_path):
    home = tmp_path / "home"
    first = ServiceProcess({"INCIDENTS_HOME": str(home)}, free_port())
    await first.start()
    try:
        pid = first.process.pid
        assert (home / "incidents.lock").read_text().split() == [str(pid), "serve"]
        second = incidents(home, "serve", "--port", str(free_port()))
        assert second.returncode == 2
        assert (
            f"incidents: another `incidents serve` (pid {pid}) is already running on the data "
            f"folder {home.resolve()}; stop it first, or set INCIDENTS_HOME to another folder"
        ) in second.stderr
        # A web process on the same SQLite file is refused too, and told why.
        web = incidents(home, "web", "--port", str(free_port()))
        assert web.returncode == 2
        assert f"another `incidents serve` (pid {pid})" in web.stderr
        assert "The embedded SQLite database is for one process" in web.stderr
        # The one-off commands work beside it.
        listed = incidents(home, "policy", "list")
        assert listed.returncode == 0, listed.stderr
        assert "san-jose" in listed.stdout
        migrated = incidents(home, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "the database schema is up to date" in migrated.stdout
        assert first.process.poll() is None
    finally:
        first.stop()
    assert (home / "incidents.lock").read_text() == ""  # a clean stop leaves no PID behind
    after = ServiceProcess({"INCIDENTS_HOME": str(home)}, free_port())
    await after.start()  # answers /healthz: the folder is free again
    after.stop()


async def test_a_worker_on_sqlite_holds_the_data_folder(tmp_path):
    home = tmp_path / "home"
    worker = ServiceProcess({"INCIDENTS_HOME": str(home)}, free_port(), role="worker")
    await worker.start()
    try:
        lock = home / "incidents.lock"
        for _ in range(600):  # a worker has no /healthz: wait for it to hold the folder
            if lock.exists() and lock.read_text():
                break
            assert worker.process.poll() is None, worker.process.stderr.read().decode()
            await asyncio.sleep(0.05)
        assert lock.read_text().split() == [str(worker.process.pid), "worker"]
        served = incidents(home, "serve", "--port", str(free_port()))
        assert served.returncode == 2
        assert f"another `incidents worker` (pid {worker.process.pid})" in served.stderr
    finally:
        worker.stop()
    after = ServiceProcess({"INCIDENTS_HOME": str(home)}, free_port())
    await after.start()
    after.stop()
