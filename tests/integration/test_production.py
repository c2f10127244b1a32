"""Production mode: PostgreSQL for state, Kafka for events, several instances at once.

Every test here runs against a real PostgreSQL and a real Kafka-protocol broker (Tansu), which
the test harness starts when none is configured.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func
from sqlmodel import select

from incidents.cases.model import Case
from incidents.kernel.eventlog import EventRow
from incidents.notices.model import Notice
from incidents.obligations.model import ClockRow, Obligation
from incidents.policy.cases import PAGE_DUTY
from incidents.reports.model import Report
from incidents.web.app import create_app
from infra.bootstrap import Runtime, build
from infra.eventlog.intake_topic import intake_dlt
from infra.settings import Settings
from tests.harness.kafka import FAST_GROUP
from tests.support import FakeClock, harm_report, settled

Factory = Callable[[], Awaitable[Runtime]]
DISCOVERED = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


@pytest.fixture
async def instances(
    tmp_path, postgres_url, kafka_bootstrap, kafka_topic, smtp_server, clock
) -> AsyncIterator[Factory]:
    """Builds service instances sharing one PostgreSQL database, one topic, one mail server."""
    built: list[Runtime] = []

    async def make() -> Runtime:
        settings = Settings(
            home=tmp_path / f"home{len(built)}",
            database_url=postgres_url,
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic=kafka_topic,
            kafka_intake_topic=f"{kafka_topic}.intake",
            smtp_url=smtp_server.url,
            secret_key="a-test-secret",
            clock_tick_seconds=3600,
            kafka_consumer_options=FAST_GROUP,
        )
        rt = await build(settings, now=clock, base_url="http://incidents.test")
        built.append(rt)
        return rt

    yield make
    for rt in built:
        await rt.close()


async def kafka_settled(*runtimes: Runtime, patience: float = 30.0) -> None:
    """Every event published, and every instance's notices sent or waiting on a retry."""
    deadline = asyncio.get_running_loop().time() + patience
    rt = runtimes[0]
    while True:
        async with rt.uows() as uow:
            unpublished = (
                await uow.session.exec(
                    select(func.count()).select_from(EventRow).where(EventRow.published_at == None)  # noqa: E711
                )
            ).one()
        if not unpublished:
            break
        assert asyncio.get_running_loop().time() < deadline, f"{unpublished} events unpublished"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # consumers commit within their poll interval (0.5 s)


async def add_poison_event(rt: Runtime, event_id: str, time: datetime) -> None:
    """An event of a type the notifier handles, whose data does not fit the schema."""
    async with rt.uows() as uow:
        uow.session.add(
            EventRow(
                id=event_id,
                type="org.ai-incidents.obligation.opened.v1",
                subject="no-such-report",
                time=time,
                data={"obligation_id": 42},
            )
        )


async def post_reports(client, n: int, **fields: str) -> list[str]:
    references = []
    for i in range(n):
        # Each about its own system: three about one would open a sunset review (San José).
        body = harm_report(title=f"Report number {i}", **{"ai_system": f"System {i}", **fields})
        resp = await client.post("/api/v1/reports", json=body)
        assert resp.status == 201, await resp.text()
        references.append((await resp.json())["reference"])
    return references


async def test_a_report_travels_through_kafka_to_its_three_notices(
    instances, aiohttp_client, smtp_server
):
    rt = await instances()
    client = await aiohttp_client(create_app(rt, workers=True))
    await post_reports(client, 1)
    received = await smtp_server.wait_for(3, timeout=30)
    assert {r for m in received for r in m.rcpt_tos} == {
        "parks.supervisor@city.example",
        "cdpo@city.example",
        "employee.relations@city.example",
    }
    async with rt.uows() as uow:
        assert rt.log is None  # the database log is not in use: Kafka carries the events
        published = list(await uow.session.exec(select(EventRow)))
    assert published and all(e.published_at is not None for e in published)


def submitted(event_id: str, body: object) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A report published by another system: a CloudEvent in binary mode."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"urn:city:ai-monitor"),
        ("ce_type", b"gov.city.ai-monitor.report.submitted.v1"),
        ("content-type", b"application/json"),
    ]
    return json.dumps(body).encode(), headers


async def test_reports_published_on_the_intake_topic_are_filed_once_and_bad_ones_parked(
    instances, kafka_bootstrap, kafka_topic
):
    rt = await instances()
    await rt.start_workers()
    intake = f"{kafka_topic}.intake"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        good = harm_report(title="Monitor: answers drifted", ai_system="Benefits Chatbot")
        for event_id, body in (("e-1", good), ("e-2", {"title": "x"}), ("e-1", good)):
            value, headers = submitted(event_id, body)
            await producer.send_and_wait(intake, value, headers=headers)
    finally:
        await producer.stop()

    async def published_reports() -> list[Report]:
        async with rt.uows() as uow:
            return list(await uow.session.exec(select(Report).where(Report.channel == "event")))

    deadline = asyncio.get_running_loop().time() + 30
    while not await published_reports():
        assert asyncio.get_running_loop().time() < deadline, "nothing filed from the topic"
        await asyncio.sleep(0.2)
    parked = AIOKafkaConsumer(
        intake_dlt(intake),
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await parked.start()
    try:
        record = await asyncio.wait_for(parked.getone(), 30)
    finally:
        await parked.stop()
    why = dict(record.headers)["x-error"].decode()
    assert "title" in why and dict(record.headers)["ce_id"] == b"e-2"
    await asyncio.sleep(1.0)  # the duplicate e-1 has been read by now
    [report] = await published_reports()
    assert report.source == "urn:city:ai-monitor" and report.title == "Monitor: answers drifted"


async def test_reports_keep_coming_while_the_broker_is_down_and_all_go_out_after(
    instances, aiohttp_client, smtp_server, kafka_broker
):
    if not kafka_broker.controllable:
        pytest.fail("this test freezes the broker; unset INCIDENTS_TEST_KAFKA to let it start one")
    rt = await instances()
    client = await aiohttp_client(create_app(rt, workers=True))
    await post_reports(client, 1)
    await smtp_server.wait_for(3, timeout=30)  # consumers have joined their groups

    kafka_broker.pause()  # SIGSTOP: the broker neither answers nor forgets
    try:
        started = asyncio.get_running_loop().time()
        await post_reports(client, 10)
        assert asyncio.get_running_loop().time() - started < 5, "intake waited on the broker"
        # Still ready (reports are taken), and the operator sees what waits for the broker.
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["events"]["unpublished"] == 40  # 10 reports x 4 events
    finally:
        kafka_broker.resume()
    received = await smtp_server.wait_for(33, timeout=90)
    await kafka_settled(rt)
    assert (await (await client.get("/readyz")).json())["events"]["unpublished"] == 0
    assert len(received) == len(smtp_server.messages) == 33
    assert len({m["Message-ID"] for m in received}) == 33


async def test_two_workers_and_two_clock_keepers_do_everything_exactly_once(
    instances, aiohttp_client, smtp_server, clock: FakeClock
):
    web = await instances()
    client = await aiohttp_client(create_app(web, workers=False))
    workers = [await instances(), await instances()]
    for w in workers:
        await w.start_workers()
    refs = await post_reports(client, 6)
    await smtp_server.wait_for(18, timeout=60)
    await kafka_settled(web, *workers)
    assert len(smtp_server.messages) == 18

    # Both clock keepers sweep at the same moment, at each reminder and at the deadline.
    for hours, expected in ((12, 36), (22, 54), (24, 60)):
        clock.set(DISCOVERED + timedelta(hours=hours, seconds=1))
        fired = await asyncio.gather(*(w.clocks.sweep() for w in workers))
        assert sum(fired) == 18  # 6 reports x 3 obligations, each clock once
        await smtp_server.wait_for(expected, timeout=60)
    await kafka_settled(web, *workers)
    messages = smtp_server.messages
    assert len(messages) == 18 * 3 + 6
    assert len({m["Message-ID"] for m in messages}) == len(messages)
    escalations = [m for m in messages if m["Subject"].startswith("Escalation:")]
    assert sorted(m["Subject"].split("[")[1].split("]")[0] for m in escalations) == sorted(refs)
    async with web.uows() as uow:
        pending = (
            await uow.session.exec(
                select(func.count()).select_from(ClockRow).where(ClockRow.status == "pending")
            )
        ).one()
        failed = (
            await uow.session.exec(
                select(func.count()).select_from(Notice).where(Notice.status != "sent")
            )
        ).one()
    assert pending == 6  # only the CIO escalations' own deadlines remain
    assert failed == 0


async def test_two_workers_open_each_security_case_once_and_page_each_step_once(
    instances, aiohttp_client, smtp_server, clock: FakeClock
):
    web = await instances()
    client = await aiohttp_client(create_app(web, workers=False))
    workers = [await instances(), await instances()]
    for w in workers:
        await w.start_workers()
    clock.set(DISCOVERED + timedelta(hours=1))  # Tuesday 09:00 in San José: the CISO is primary
    refs = await post_reports(client, 4, kind="security")
    await kafka_settled(web, *workers)
    deadline = asyncio.get_running_loop().time() + 60  # the consumer groups join first
    while True:
        async with web.uows() as uow:
            opened = list(await uow.session.exec(select(Case)))
            pages = list(
                await uow.session.exec(select(Obligation).where(Obligation.duty == PAGE_DUTY))
            )
        if len(opened) >= 4 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    await kafka_settled(web, *workers)
    assert len(opened) == 4 and len(pages) == 4
    # Both keepers sweep when the first step's wait is over: each page goes up one step, once.
    clock.advance(minutes=16)
    fired = await asyncio.gather(*(w.clocks.sweep() for w in workers))
    assert sum(fired) >= 4
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with web.uows() as uow:
            steps = list(
                await uow.session.exec(select(Obligation).where(Obligation.duty == PAGE_DUTY))
            )
        if len(steps) >= 8 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    await kafka_settled(web, *workers)
    async with web.uows() as uow:
        steps = list(await uow.session.exec(select(Obligation).where(Obligation.duty == PAGE_DUTY)))
    assert sorted(s.level for s in steps) == [0, 0, 0, 0, 1, 1, 1, 1]
    # The roster's secondary for business hours (not the security team, the no-shift fallback).
    assert {r["email"] for s in steps if s.level == 1 for r in s.recipients} == {"iso@city.example"}
    assert len(refs) == 4


async def test_a_poison_event_is_parked_with_its_reason_and_the_rest_flow_on(
    instances, aiohttp_client, smtp_server, clock
):
    rt = await instances()
    client = await aiohttp_client(create_app(rt, workers=True))
    await add_poison_event(rt, "00000000-0000-4000-8000-00000000dead", clock())
    rt.relay.wake()
    await post_reports(client, 2)
    await smtp_server.wait_for(6, timeout=30)
    await kafka_settled(rt)

    parked = await rt.parked("notifier")
    assert [p["event_id"] for p in parked] == ["00000000-0000-4000-8000-00000000dead"]
    assert "does not fit its schema" in parked[0]["error"]
    assert parked[0]["replayed"] is False
    # Replaying sends it back; it still cannot be handled, so it is parked again, not lost.
    assert await rt.replay_parked("notifier") == 1
    for _ in range(100):
        again = await rt.parked("notifier")
        if len(again) == 2:
            break
        await asyncio.sleep(0.2)
    assert len(again) == 2
    assert len(smtp_server.messages) == 6


async def test_the_embedded_dead_letter_place_works_the_same(client, runtime, clock, smtp_server):
    await add_poison_event(runtime, "00000000-0000-4000-8000-00000000beef", clock())
    runtime.log.wake()
    await client.post("/api/v1/reports", json=harm_report())
    await smtp_server.wait_for(3)
    await settled(runtime)
    parked = await runtime.parked("notifier")
    assert [p["event_id"] for p in parked] == ["00000000-0000-4000-8000-00000000beef"]
    assert await runtime.replay_parked("notifier") == 1
    assert [p["replayed"] for p in await runtime.parked("notifier")] == [True, False]


async def test_the_web_role_only_writes_and_a_worker_publishes_and_sends(
    instances, aiohttp_client, smtp_server
):
    web = await instances()
    client = await aiohttp_client(create_app(web, workers=False))
    await post_reports(client, 1)
    await asyncio.sleep(1.0)
    async with web.uows() as uow:
        waiting = list(await uow.session.exec(select(EventRow)))
    # No worker is running: the events wait in the database, and nothing is sent.
    assert len(waiting) == 4 and all(e.published_at is None for e in waiting)
    assert smtp_server.messages == []
    # It shows what waits, and claims nothing about a broker it never talks to.
    events = (await (await client.get("/readyz")).json())["events"]
    assert events["unpublished"] == 4 and "broker" not in events
    worker = await instances()
    await worker.start_workers()
    await smtp_server.wait_for(3, timeout=30)
    await kafka_settled(web)  # every event was published, by the worker


async def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing(
    tmp_path, postgres_url, kafka_bootstrap, kafka_topic, smtp_server, instances, aiohttp_client,
    clock,
):  # fmt: skip
    import json

    from tests.harness.kafka import free_port
    from tests.support import ServiceProcess

    # The worker process runs on the real clock, so the web instance does too, and the reports
    # are an hour old: no reminder is due while the test runs, whatever day it runs on.
    clock.set(datetime.now(UTC))
    recent = (clock() - timedelta(hours=1)).isoformat()
    web = await instances()
    client = await aiohttp_client(create_app(web, workers=False))
    worker = ServiceProcess(
        {
            "INCIDENTS_HOME": str(tmp_path / "worker"),
            "INCIDENTS_DATABASE_URL": postgres_url,
            "INCIDENTS_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "INCIDENTS_KAFKA_TOPIC": kafka_topic,
            "INCIDENTS_KAFKA_CONSUMER_OPTIONS": json.dumps(FAST_GROUP),
            "INCIDENTS_SMTP_URL": smtp_server.url + "?timeout=3",
            "INCIDENTS_SECRET_KEY": "a-test-secret",
            "INCIDENTS_DELIVERY_LEASE_SECONDS": "5",
            "INCIDENTS_SMTP_CONNECTIONS": "4",
        },
        free_port(),
        role="worker",
    )
    await worker.start()
    try:
        await post_reports(client, 1, discovered_at=recent)
        await smtp_server.wait_for(3, timeout=60)  # the worker has joined its groups
        await post_reports(client, 40, discovered_at=recent)
        await smtp_server.wait_for(20, timeout=60)
        worker.kill()  # mid-batch: some notices sent, some claimed, some not yet rendered
        killed_at = len(smtp_server.messages)
        assert killed_at < 123, "the worker finished before it could be killed"

        await worker.start()
        received = await smtp_server.wait_for(123, timeout=120)
        await asyncio.sleep(2)
        ids = [m["Message-ID"] for m in smtp_server.messages]
        assert len(set(ids)) == 123  # every notice of the 41 reports, none lost
        # A duplicate is possible only for a notice accepted by the server just before the
        # kill and not yet recorded; it carries the same Message-ID, so mail systems drop it.
        # Delivery bounds those to twice its connections (4 here).
        assert len(ids) - len(set(ids)) <= 8
        assert received

        # `docker stop` sends SIGTERM and kills 10 s later: the worker closes cleanly before.
        assert worker.process is not None
        worker.process.terminate()
        assert await asyncio.to_thread(worker.process.wait, 10) == 0
    finally:
        worker.stop()


async def test_an_instance_without_its_database_says_it_is_not_ready(client, runtime, smtp_server):
    from infra.db import make_engine, make_sessions
    from tests.harness.kafka import free_port

    assert (await client.get("/readyz")).status == 200
    # The database goes away: here, the instance's connections point at a port nobody serves.
    gone = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/incidents")
    kept, runtime.uows.sessions = runtime.uows.sessions, make_sessions(gone)
    try:
        answer = await client.get("/readyz")
        assert answer.status == 503
        body = await answer.json()
        assert body["status"] == "unavailable"
        assert body["database"].startswith("cannot reach the database")
        await asyncio.sleep(1.2)  # long enough for every reader of the log to meet the outage
    finally:
        runtime.uows.sessions = kept
        await gone.dispose()
    # Its consumers and delivery lived through the outage: a report filed now is told to all.
    await asyncio.sleep(0.5)  # the readers' first retry, well within the backoff's 5 s ceiling
    assert (await client.post("/api/v1/reports", json=harm_report())).status == 201
    await smtp_server.wait_for(3, timeout=15)


async def test_a_worker_hears_at_once_of_events_a_web_instance_commits_even_after_reconnecting(
    instances, aiohttp_client
):
    """The worker looks for new events only every 30 s here, so a report published within a
    second was announced by the database (LISTEN/NOTIFY), not found by a poll."""
    from sqlalchemy import text

    web = await instances()
    client = await aiohttp_client(create_app(web, workers=False))
    worker = await instances()
    assert worker.relay is not None and worker.listener is not None
    worker.relay.poll_seconds = 30.0
    worker.listener.retry_seconds = 0.2
    await worker.start_workers()
    await asyncio.sleep(1.0)  # the worker is listening and its relay is idle, waiting
    await post_reports(client, 1)
    await kafka_settled(web, patience=1.0)

    async with web.uows() as uow:  # as when the database restarts or a firewall drops it
        ended = await uow.session.exec(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
            )
        )
        assert list(ended), "no listening connection was found"
    await asyncio.sleep(1.5)  # it reconnects after retry_seconds
    await post_reports(client, 1)
    await kafka_settled(web, patience=1.0)
