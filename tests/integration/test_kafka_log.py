"""Kafka as the event log, against a real broker (Tansu unless INCIDENTS_TEST_KAFKA is set)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy import func
from sqlmodel import col, select

from incidents.kernel.eventlog import EventRow
from incidents.kernel.events import Envelope, EventSchemaError
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from incidents.obligations.events import ObligationAcknowledged
from infra.db import make_engine, make_sessions
from infra.eventlog.kafka import (
    KafkaPublisher,
    KafkaSource,
    from_record,
    list_parked,
    replay_parked,
    to_record,
)
from infra.eventlog.relay import OutboxRelay
from infra.migrate import create_schema
from tests.harness.fixtures import *  # noqa: F403
from tests.harness.kafka import FAST_GROUP, Broker

ACK = ObligationAcknowledged.type_name()


def envelope(subject: str | None = None, n: int = 0) -> Envelope:
    event = ObligationAcknowledged(obligation_id=f"ob-{n}", by="cio@city.example")
    return event.envelope(subject=subject or str(uuid.uuid4()), time=datetime.now(UTC))


def record(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(
        topic="t", partition=0, offset=0, timestamp=0, timestamp_type=0, key=key, value=value,
        checksum=None, serialized_key_size=0, serialized_value_size=len(value), headers=headers,
    )  # fmt: skip


async def drain(source: KafkaSource, want: int, within: float = 10.0) -> list[Envelope]:
    got: list[Envelope] = []
    deadline = time.monotonic() + within
    while len(got) < want and time.monotonic() < deadline:
        got.extend(await source.next_batch())
    return got


@contextlib.asynccontextmanager
async def started(source: KafkaSource) -> AsyncIterator[KafkaSource]:
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


@pytest.fixture
async def publisher(kafka_bootstrap: str, kafka_topic: str) -> AsyncIterator[KafkaPublisher]:
    pub = KafkaPublisher(kafka_bootstrap, topic=kafka_topic, request_timeout_ms=60_000)
    await pub.start()
    yield pub
    await pub.stop()


def test_cloudevents_binary_mapping() -> None:
    env = envelope()
    key, value, headers = to_record(env)
    h = dict(headers)
    assert key == env.subject.encode()
    assert h["ce_id"] == env.id.encode()
    assert h["ce_type"] == ACK.encode()
    assert h["ce_source"] == b"/ai-incidents"
    assert h["ce_specversion"] == b"1.0"
    assert h["ce_subject"] == env.subject.encode()
    assert h["ce_partitionkey"] == env.subject.encode()
    assert h["content-type"] == b"application/json"
    assert h["ce_time"].endswith(b"Z")
    assert from_record(record(key, value, headers)) == env


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h, v: ([x for x in h if x[0] != "ce_id"], v),
        lambda h, v: ([x for x in h if x[0] != "ce_time"], v),
        lambda h, v: (h, b"not json"),
        lambda h, v: (h, b"[1, 2]"),
        lambda h, v: ([(k, b"\xff" if k == "ce_type" else x) for k, x in h], v),
        lambda h, v: ([(k, b"yesterday" if k == "ce_time" else x) for k, x in h], v),
        lambda h, v: ([], v),
    ],
)
def test_not_a_cloudevent_is_a_schema_error(mangle) -> None:  # type: ignore[no-untyped-def]
    key, value, headers = to_record(envelope())
    headers, value = mangle(headers, value)
    with pytest.raises(EventSchemaError):
        from_record(record(key, value, headers))


async def test_round_trip_commit_and_redelivery(
    kafka_bootstrap: str, kafka_topic: str, publisher: KafkaPublisher
) -> None:
    report = str(uuid.uuid4())
    sent = [envelope(report, n) for n in range(5)] + [envelope(n=9)]
    await publisher.publish(sent)

    # Read but not committed: a new member of the group gets them again.
    async with started(
        KafkaSource(kafka_bootstrap, "c1", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP)
    ) as source:
        got = await drain(source, len(sent))
    assert sorted(e.id for e in got) == sorted(e.id for e in sent)
    assert [e for e in got if e.subject == report] == sent[:5]  # one report's events in order

    async with started(
        KafkaSource(kafka_bootstrap, "c1", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP)
    ) as source:
        again = await drain(source, len(sent))
        assert sorted(e.id for e in again) == sorted(e.id for e in sent)
        await source.commit()

    # Committed: nothing more for the group; another group still reads everything.
    async with started(
        KafkaSource(kafka_bootstrap, "c1", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP)
    ) as source:
        assert await drain(source, 1, within=1.0) == []
    async with started(
        KafkaSource(kafka_bootstrap, "c2", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP)
    ) as source:
        assert len(await drain(source, len(sent))) == len(sent)


async def test_other_types_are_skipped_but_committed(
    kafka_bootstrap: str, kafka_topic: str, publisher: KafkaPublisher
) -> None:
    await publisher.publish([envelope(n=1), envelope(n=2)])
    only = {"org.ai-incidents.incident.reported.v1"}
    async with started(
        KafkaSource(kafka_bootstrap, "c", only, topic=kafka_topic, consumer_config=FAST_GROUP)
    ) as source:
        assert await drain(source, 1, within=1.0) == []
        await source.commit()
    async with started(
        KafkaSource(kafka_bootstrap, "c", None, topic=kafka_topic, consumer_config=FAST_GROUP)
    ) as source:
        assert await drain(source, 1, within=1.0) == []


async def test_park_list_replay(
    kafka_bootstrap: str, kafka_topic: str, publisher: KafkaPublisher
) -> None:
    bad, good = envelope(n=1), envelope(n=2)
    await publisher.publish([bad, good])
    # And a record that is no CloudEvent at all: parked by the source itself.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(kafka_topic, b"garbage", key=b"r", headers=[("x", b"1")])
    await producer.stop()

    async with started(
        KafkaSource(
            kafka_bootstrap, "notifier", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP
        )
    ) as src:
        got = await drain(src, 2)
        assert {e.id for e in got} == {bad.id, good.id}
        await src.park(bad, "RuntimeError: mail template broken", attempts=5)
        await src.commit()

    parked = await list_parked(kafka_bootstrap, "notifier", topic=kafka_topic)
    assert len(parked) == 2
    by_id = {p["event_id"]: p for p in parked}
    assert by_id[bad.id]["error"] == "RuntimeError: mail template broken"
    assert by_id[bad.id]["attempts"] == 5
    assert by_id[bad.id]["consumer"] == "notifier"
    assert by_id[bad.id]["type"] == ACK and by_id[bad.id]["subject"] == bad.subject
    assert by_id[None]["error"].startswith("not a CloudEvent") and by_id[None]["attempts"] == 1
    assert not any(p["replayed"] for p in parked)
    assert await list_parked(kafka_bootstrap, topic=kafka_topic) == parked

    assert await replay_parked(kafka_bootstrap, "notifier", topic=kafka_topic) == 2
    assert await replay_parked(kafka_bootstrap, "notifier", topic=kafka_topic) == 0
    assert all(p["replayed"] for p in await list_parked(kafka_bootstrap, topic=kafka_topic))

    # Back on the events topic, same key, without the parking headers; the group reads it anew.
    async with started(
        KafkaSource(
            kafka_bootstrap, "notifier", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP
        )
    ) as src:
        got = await drain(src, 1)
        assert got == [bad]
        assert "x-error" not in dict(src._records[bad.id].headers)
        assert src._records[bad.id].key == bad.subject.encode()
        await src.commit()
    # The garbage was parked again on its second reading (still no CloudEvent).
    assert len(await list_parked(kafka_bootstrap, "notifier", topic=kafka_topic)) == 3


# --- the relay ---------------------------------------------------------------------------------


@pytest.fixture
async def uows(database_url: str) -> AsyncIterator[UnitOfWorkFactory]:
    engine = make_engine(database_url)
    await create_schema(engine)
    yield UnitOfWorkFactory(make_sessions(engine))
    await engine.dispose()


async def write_events(uows: UnitOfWorkFactory, reports: list[str], per_report: int) -> list[str]:
    ids = []
    for n in range(per_report):
        async with uows() as uow:  # a transaction per step, as in the service
            for r in reports:
                ids.append(uow.emit(envelope_event(n), subject=r, time=datetime.now(UTC)).id)
    return ids


def envelope_event(n: int) -> ObligationAcknowledged:
    return ObligationAcknowledged(obligation_id=f"ob-{n}", by="x@city.example")


async def unpublished(uows: UnitOfWorkFactory) -> int:
    async with uows() as uow:
        q = select(func.count()).select_from(EventRow).where(col(EventRow.published_at).is_(None))
        return int((await uow.session.exec(q)).one())


async def read_topic(bootstrap: str, topic: str, want: int, within: float = 10.0) -> list:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list = []
    deadline = time.monotonic() + within
    try:
        while len(out) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def test_relay_publishes_in_seq_order(
    uows: UnitOfWorkFactory, kafka_bootstrap: str, kafka_topic: str, publisher: KafkaPublisher
) -> None:
    reports = [str(uuid.uuid4()) for _ in range(7)]
    ids = await write_events(uows, reports, per_report=30)
    relay = OutboxRelay(uows, publisher, batch=50)
    total = 0
    while n := await relay.relay_once():
        total += n
    assert total == len(ids) and await unpublished(uows) == 0

    records = await read_topic(kafka_bootstrap, kafka_topic, len(ids))
    assert len(records) == len(ids)
    order = {i: n for n, i in enumerate(ids)}
    for r in reports:
        seqs = [
            (rec.partition, rec.offset, order[from_record(rec).id])
            for rec in records
            if rec.key == r.encode()
        ]
        assert len({p for p, _, _ in seqs}) == 1  # one report, one partition
        assert [s for *_, s in sorted(seqs)] == sorted(s for *_, s in seqs)  # in seq order


async def test_relay_waits_out_a_broker_outage(
    uows: UnitOfWorkFactory, kafka_broker: Broker, kafka_topic: str, publisher: KafkaPublisher
) -> None:
    if not kafka_broker.controllable:
        pytest.skip("needs the broker the harness starts (INCIDENTS_TEST_KAFKA is set)")
    relay = OutboxRelay(uows, publisher, batch=100, poll_seconds=0.05)
    uows = UnitOfWorkFactory(uows.sessions, on_events=relay.wake)  # as the bootstrap wires it
    task = asyncio.create_task(relay.run())
    try:
        await write_events(uows, [str(uuid.uuid4())], per_report=3)
        await wait_until(lambda: unpublished(uows), 0)

        kafka_broker.pause()
        try:
            started_at = time.monotonic()
            ids = await write_events(uows, [str(uuid.uuid4()) for _ in range(4)], per_report=5)
            intake = time.monotonic() - started_at
            assert intake < 2, f"intake blocked by the outage: {intake:.1f}s"
            await asyncio.sleep(1.0)
            assert await unpublished(uows) == len(ids)
        finally:
            kafka_broker.resume()
        await wait_until(lambda: unpublished(uows), 0, within=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    records = await read_topic(kafka_broker.bootstrap, kafka_topic, 23)
    assert {from_record(r).id for r in records} >= set(ids)


async def wait_until(probe, want, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while (got := await probe()) != want:
        assert time.monotonic() < deadline, f"still {got}, wanted {want}"
        await asyncio.sleep(0.05)


# --- with the consumer runner ------------------------------------------------------------------


class Flaky:
    """A consumer that fails on one obligation and handles the rest."""

    name = "flaky"
    handles = frozenset({ObligationAcknowledged})

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle(self, incoming, *, uow, now) -> None:  # type: ignore[no-untyped-def]
        for event, envelope in incoming:
            if event.obligation_id == "ob-bad":
                raise RuntimeError("cannot render")
            # Seen once its transaction commits: a chunk that fails is rolled back and retried.
            uow.after_commit(lambda id=envelope.id: self.seen.append(id))


async def test_runner_on_kafka_handles_once_and_parks_failures(
    uows: UnitOfWorkFactory, kafka_bootstrap: str, kafka_topic: str, publisher: KafkaPublisher
) -> None:
    from consumers.runner import ConsumerRunner

    good = [envelope(n=n) for n in range(3)]
    bad = ObligationAcknowledged(obligation_id="ob-bad", by="x").envelope(
        subject=str(uuid.uuid4()), time=datetime.now(UTC)
    )
    await publisher.publish([*good, bad, good[0]])  # good[0] twice: a duplicate delivery
    consumer = Flaky()
    source = KafkaSource(
        kafka_bootstrap, "flaky", {ACK}, topic=kafka_topic, consumer_config=FAST_GROUP
    )
    runner = ConsumerRunner(
        consumer, source, uows, lambda: datetime.now(UTC), max_attempts=2, first_backoff=0.01
    )
    await source.start()
    try:
        deadline = time.monotonic() + 10
        seen = 0
        while seen < 5 and time.monotonic() < deadline:
            seen += await runner.drain_once()
    finally:
        await source.stop()
    assert sorted(consumer.seen) == sorted(e.id for e in good)
    parked = await list_parked(kafka_bootstrap, "flaky", topic=kafka_topic)
    assert [(p["event_id"], p["attempts"]) for p in parked] == [(bad.id, 2)]
    assert parked[0]["error"] == "RuntimeError: cannot render"


# --- `incidents kafka init` ----------------------------------------------------------------------


def test_kafka_init_creates_the_topics_once_and_refuses_more_replicas_than_brokers(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from typer.testing import CliRunner

    from incidents.cli import app

    topic = f"init-{uuid.uuid4().hex[:12]}.events"
    monkeypatch.setenv("INCIDENTS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("INCIDENTS_KAFKA_TOPIC", topic)
    runner = CliRunner()

    # The test broker is one node: three copies of each event cannot be kept, and saying so
    # beats a topic that silently has fewer copies than the administrator asked for.
    refused = runner.invoke(app, ["kafka", "init", "--replication-factor", "3"])
    assert refused.exit_code == 2
    assert "has 1 broker" in refused.output
    assert "--replication-factor 1" in refused.output

    for _ in range(2):  # safe to run twice
        done = runner.invoke(app, ["kafka", "init", "--partitions", "3"])
        assert done.exit_code == 0, done.output

    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    assert {topic, f"{topic}.notifier.dlt", f"{topic}.router.dlt"} <= asyncio.run(topics())
