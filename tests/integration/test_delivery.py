"""Mail delivery when the mail server misbehaves: a temporary refusal is retried with backoff, a
permanent one is recorded on the obligation and escalated; nothing is dropped."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from sqlmodel import select

from incidents.notices.model import Notice
from incidents.obligations.model import Obligation
from tests.support import harm_report, settled


async def notices(runtime) -> list[Notice]:
    async with runtime.uows() as uow:
        return list(await uow.session.exec(select(Notice)))


async def test_a_temporary_refusal_is_retried_until_the_server_recovers(
    client, runtime, clock, smtp_server
):
    smtp_server.fail(451)  # "try again later", for every recipient, until healed
    await client.post("/api/v1/reports", json=harm_report())
    await settled(runtime)
    assert smtp_server.messages == []
    pending = await notices(runtime)
    assert [n.status for n in pending] == ["pending"] * 3
    assert all("451" in (n.last_error or "") for n in pending)

    clock.advance(seconds=1)  # the first retry comes a second later; still refused
    runtime.delivery.wake()
    await settled(runtime)
    assert {n.attempts for n in await notices(runtime)} == {2}
    # The operator sees the backlog; the instance stays ready, since reports are still taken.
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["notices"] == {
        "waiting": 3,
        "oldest_waiting_seconds": 1.0,
        "refused": 0,
    }

    smtp_server.heal()
    clock.advance(seconds=2)  # then two seconds later, and the server is back
    runtime.delivery.wake()
    await smtp_server.wait_for(3)
    await settled(runtime)
    sent = await notices(runtime)
    assert [n.status for n in sent] == ["sent"] * 3
    assert {n.attempts for n in sent} == {3}
    assert len(smtp_server.messages) == 3
    ready = await (await client.get("/readyz")).json()
    assert ready["notices"]["waiting"] == 0
    assert "events" not in ready  # the embedded log has no outbox waiting for a broker


async def test_a_permanent_refusal_is_recorded_and_escalated_at_once(
    client, runtime, clock, smtp_server
):
    smtp_server.fail(550, times=3)  # the three first recipients are refused for good
    await client.post("/api/v1/reports", json=harm_report())
    escalation = await smtp_server.wait_for(1)
    await settled(runtime)
    assert escalation[0].rcpt_tos == ["cio@city.example"]
    assert escalation[0]["Subject"].startswith("Escalation:")
    failed = [n for n in await notices(runtime) if n.status == "failed"]
    assert len(failed) == 3 and all("550" in (n.last_error or "") for n in failed)
    async with runtime.uows() as uow:
        named = list(await uow.session.exec(select(Obligation).where(Obligation.level == 0)))
    assert all("550" in (o.delivery_error or "") for o in named)

    clock.advance(hours=1)  # a refused notice is not retried
    runtime.delivery.wake()
    await settled(runtime)
    assert len(smtp_server.messages) == 1
    ready = await (await client.get("/readyz")).json()
    assert ready["notices"] == {"waiting": 0, "oldest_waiting_seconds": None, "refused": 3}


async def test_after_a_restart_the_embedded_service_retries_waiting_notices_at_once(
    client, runtime, clock, smtp_server, database_url
):
    smtp_server.fail(451)
    await client.post("/api/v1/reports", json=harm_report())
    await settled(runtime)
    smtp_server.heal()

    await runtime.close()  # a restart, with the clock where it was: no retry is due yet
    await runtime.start_workers()
    if database_url.startswith("sqlite"):
        await smtp_server.wait_for(3)  # one process owns the database: it retries at once
    else:
        await settled(runtime)
        assert smtp_server.messages == []  # several instances may share it: backoff holds
        clock.advance(seconds=1)
        runtime.delivery.wake()
        await smtp_server.wait_for(3)
    await settled(runtime)
    assert len(smtp_server.messages) == 3


async def test_a_send_whose_record_fails_for_a_while_is_recorded_later_not_sent_twice(
    client, runtime, clock, smtp_server
):
    """The database drops the writes that record sends, twice, as in a short outage."""
    real = runtime.delivery.uows

    class RecordsFailTwice:
        failures = 0

        @asynccontextmanager
        async def __call__(self):  # type: ignore[no-untyped-def]
            # Sends are recorded in a unit of work (with their entries on the record); without
            # a refusal, recording is the only use delivery makes of one.
            async with real() as uow:
                yield uow
                if self.failures < 2:
                    self.failures += 1
                    raise OSError("connection to the database lost")  # before the commit

        async def execute(self, statement):  # type: ignore[no-untyped-def]
            return await real.execute(statement)

    flaky = RecordsFailTwice()
    runtime.delivery.uows = flaky
    await client.post("/api/v1/reports", json=harm_report())
    await smtp_server.wait_for(3)
    for _ in range(100):  # the record is retried within a second
        if [n.status for n in await notices(runtime)] == ["sent"] * 3:
            break
        await asyncio.sleep(0.05)
    assert flaky.failures == 2
    assert [n.status for n in await notices(runtime)] == ["sent"] * 3

    clock.advance(minutes=5)  # long past every claim's lease: nothing is due again
    runtime.delivery.wake()
    await settled(runtime)
    await asyncio.sleep(0.5)
    assert len(smtp_server.messages) == 3
