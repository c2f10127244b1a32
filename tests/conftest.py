"""Shared fixtures: real services from tests/harness, and a service built on them with a clock
the test moves by hand, so deadlines are reached without sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from incidents.web.app import create_app
from infra.bootstrap import Runtime, build
from infra.settings import Settings
from tests.harness.fixtures import *  # noqa: F403  (kafka_*, postgres_*, database_url, smtp_server)
from tests.harness.imap import imap_server  # noqa: F401  (Dovecot, for mail that comes in)
from tests.harness.smtp import SMTPServer
from tests.support import FakeClock


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own INCIDENTS_* variables must not change what a test sees."""
    import os

    for name in list(os.environ):
        if name.startswith("INCIDENTS_") and not name.startswith("INCIDENTS_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    # A Tuesday morning in San José: 09:00 PST.
    return FakeClock(datetime(2026, 11, 24, 17, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, database_url: str, smtp_server: SMTPServer) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        smtp_url=smtp_server.url,
        secret_key="a-test-secret",
        clock_tick_seconds=3600,  # tests fire clocks themselves, after moving the clock
    )


@pytest.fixture
async def runtime(settings: Settings, clock: FakeClock) -> AsyncIterator[Runtime]:
    rt = await build(settings, now=clock, base_url="http://incidents.test")
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def client(aiohttp_client, runtime: Runtime) -> TestClient:  # type: ignore[no-untyped-def]
    """The web app with its consumers, delivery and clocks running in the test's event loop."""
    return await aiohttp_client(create_app(runtime, workers=True))
