"""Nothing accepted is lost: the service is killed with SIGKILL after accepting a report and
before sending its notices, then restarted; every notice goes out, exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import select

from incidents.notices.model import Notice
from infra.db import make_engine, make_sessions
from notifications.outbound.delivery import LEASE
from tests.harness.kafka import free_port
from tests.harness.smtp import SMTPServer
from tests.support import ServiceProcess, harm_report


async def notices_recorded(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with make_sessions(engine)() as session:
            return (await session.exec(select(func.count()).select_from(Notice))).one()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kill_when", ["right after the 201", "after notices are recorded"])
async def test_killed_before_sending_then_restarted_sends_every_notice_once(
    tmp_path, database_url, kill_when
):
    smtp = SMTPServer()  # its port is reserved but nothing listens yet: the mail server is down
    service = ServiceProcess(
        {
            "INCIDENTS_HOME": str(tmp_path / "home"),
            "INCIDENTS_DATABASE_URL": database_url,
            "INCIDENTS_SMTP_URL": smtp.url,
        },
        free_port(),
    )
    await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            # The service runs on the real clock here: discovered an hour ago.
            discovered = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            body = harm_report(discovered_at=discovered)
            async with http.post(service.url + "/api/v1/reports", json=body) as resp:
                assert resp.status == 201
        if kill_when == "after notices are recorded":
            for _ in range(200):
                if await notices_recorded(database_url) == 3:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the notifier never recorded the three notices")
        service.kill()

        smtp.start()
        await service.start()
        # On SQLite the restarted process owns every claim and sends at once. On PostgreSQL
        # several instances may share the work, so a notice claimed by the killed process
        # waits out its lease before another takes it.
        patience = 20 if database_url.startswith("sqlite") else LEASE.total_seconds() + 20
        received = await smtp.wait_for(3, timeout=patience)
        await asyncio.sleep(2)  # a duplicate would arrive within the first retries
        received = smtp.messages
        assert len(received) == 3
        assert len({m["Message-ID"] for m in received}) == 3
        assert {r for m in received for r in m.rcpt_tos} == {
            "parks.supervisor@city.example",
            "cdpo@city.example",
            "employee.relations@city.example",
        }
    finally:
        service.stop()
        smtp.controller.stop(no_assert=True)  # it may never have started
