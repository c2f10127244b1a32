"""The intake topic reader against a real broker (Tansu unless INCIDENTS_TEST_KAFKA is set)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, RecordMetadata
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from infra.eventlog.intake_topic import (
    Inbound,
    IntakeTopicReader,
    Refused,
    init_intake_topics,
    intake_dlt,
)
from tests.harness.fixtures import *  # noqa: F403
from tests.harness.kafka import FAST_GROUP, free_port

Headers = list[tuple[str, bytes]]
KEY = b"traffic-signals"


def ce_headers(ce_id: str, *, drop: tuple[str, ...] = ()) -> Headers:
    """Binary-mode attributes written by hand, as a tool without a CloudEvents library would."""
    headers = [
        ("ce_id", ce_id.encode()),
        ("ce_source", b"/city/traffic-ai"),
        ("ce_type", b"gov.sanjose.ai.incident.v1"),
        ("ce_specversion", b"1.0"),
        ("ce_time", b"2026-11-24T17:00:00Z"),
        ("content-type", b"application/json"),
    ]
    return [(k, v) for k, v in headers if k not in drop]


def with_binding(ce_id: str, data: dict[str, Any]) -> tuple[bytes, Headers]:
    """The same, written by the cloudevents Kafka binding."""
    event = CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": ce_id,
            "source": "/city/camera-ai",
            "type": "gov.sanjose.ai.incident.v1",
            "datacontenttype": "application/json",
        },
        data=data,
    )
    message = ce_kafka.to_binary(event, JSONFormat())
    return message.value, list(message.headers.items())


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}.intake"
    assert await init_intake_topics(kafka_bootstrap, name) == [name, intake_dlt(name)]
    assert await init_intake_topics(kafka_bootstrap, name) == []
    return name


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await p.start()
    yield p
    await p.stop()


def reader(
    bootstrap: str, topic: str, handler: Callable[[Inbound], Any], group: str | None = None
) -> IntakeTopicReader:
    return IntakeTopicReader(
        bootstrap, handler, topic=topic, group=group or f"{topic}.group", consumer_config=FAST_GROUP
    )


@contextlib.asynccontextmanager
async def running(r: IntakeTopicReader) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


async def dead_letters(bootstrap: str, topic: str, want: int) -> list[ConsumerRecord]:
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await client.start()
    try:
        tp = TopicPartition(intake_dlt(topic), 0)
        client.assign([tp])
        await client.seek_to_beginning(tp)
        out: list[ConsumerRecord] = []
        deadline = time.monotonic() + 10
        while len(out) < want and time.monotonic() < deadline:
            for records in (await client.getmany(timeout_ms=200)).values():
                out.extend(records)
        # Anything more would be a duplicate; give it a moment to show.
        out.extend(r for rs in (await client.getmany(timeout_ms=300)).values() for r in rs)
        return out
    finally:
        await client.stop()


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Partitions named: Tansu mis-encodes the answer for "all partitions".
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
        found = offsets.get(tp)
        return found.offset if found is not None and found.offset >= 0 else None
    finally:
        await admin.close()


async def test_handled_in_order_refused_parked_rest_committed(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    value1, headers1 = with_binding("ev-1", {"title": "Signal timing model drifted"})
    value2, headers2 = b'{"title": "x"}', ce_headers("ev-2") + [("x-trace", b"abc")]
    value3, headers3 = b'{"title": "Camera misread plates"}', ce_headers("ev-3")
    sent: list[RecordMetadata] = []
    for value, headers in [(value1, headers1), (value2, headers2), (value3, headers3)]:
        sent.append(await producer.send_and_wait(topic, value, key=KEY, headers=headers))
    assert len({m.partition for m in sent}) == 1  # one key, one partition: an order to keep

    seen: list[Inbound] = []

    async def handler(inbound: Inbound) -> None:
        seen.append(inbound)
        if len(inbound.data["title"]) < 3:
            raise Refused("title: too short")

    async with running(reader(kafka_bootstrap, topic, handler)):
        await until(lambda: len(seen) == 3)
        tp = TopicPartition(topic, sent[0].partition)
        await until_committed(kafka_bootstrap, f"{topic}.group", tp, sent[2].offset + 1)

    assert [i.id for i in seen] == ["ev-1", "ev-2", "ev-3"]
    first = seen[0]
    assert first.source == "/city/camera-ai" and first.type == "gov.sanjose.ai.incident.v1"
    assert first.data == {"title": "Signal timing model drifted"}
    assert first.raw_value == value1 and first.headers == headers1
    assert seen[2].source == "/city/traffic-ai"

    [parked] = await dead_letters(kafka_bootstrap, topic, 1)
    assert parked.key == KEY and parked.value == value2
    assert list(parked.headers) == headers2 + [
        ("x-error", b"title: too short"),
        ("x-original-partition", str(sent[1].partition).encode()),
        ("x-original-offset", str(sent[1].offset).encode()),
    ]

    # A new member of the group starts after the commits: only what came since. (Same partition,
    # so anything left uncommitted would come before ev-4.)
    await producer.send_and_wait(topic, b'{"title": "later"}', key=KEY, headers=ce_headers("ev-4"))
    again: list[Inbound] = []

    async def record(inbound: Inbound) -> None:
        again.append(inbound)

    async with running(reader(kafka_bootstrap, topic, record)):
        await until(lambda: len(again) >= 1)
    assert [i.id for i in again] == ["ev-4"]


async def until_committed(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    deadline = time.monotonic() + 10
    while (got := await committed(bootstrap, group, tp)) != offset:
        assert time.monotonic() < deadline, f"committed {got}, not {offset}"
        await asyncio.sleep(0.1)


async def test_not_a_cloudevent_is_parked_unseen(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    no_id = ce_headers("", drop=("ce_id",))
    await producer.send_and_wait(topic, b'{"title": "no id"}', key=KEY, headers=no_id)
    await producer.send_and_wait(topic, b"plain text", key=KEY, headers=[("origin", b"legacy")])
    old = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in ce_headers("ev-old")]
    await producer.send_and_wait(topic, b"{}", key=KEY, headers=old)
    # A CloudEvent whose value is not JSON still reaches the handler, which decides.
    await producer.send_and_wait(topic, b"\xffnot json", key=KEY, headers=ce_headers("ev-raw"))
    seen: list[Inbound] = []

    async def handler(inbound: Inbound) -> None:
        seen.append(inbound)

    async with running(reader(kafka_bootstrap, topic, handler)):
        await until(lambda: len(seen) == 1)

    assert seen[0].id == "ev-raw" and seen[0].data is None and seen[0].raw_value == b"\xffnot json"
    parked = await dead_letters(kafka_bootstrap, topic, 3)
    errors = [dict(p.headers)["x-error"].decode() for p in parked]
    assert errors == [
        "not a CloudEvent: missing ce_id",
        "not a CloudEvent: missing ce_id, ce_source, ce_type, ce_specversion",
        "not a CloudEvent 1.0: ce_specversion is '0.3'",
    ]
    assert [p.value for p in parked] == [b'{"title": "no id"}', b"plain text", b"{}"]
    assert ("origin", b"legacy") in parked[1].headers


async def test_failure_is_retried_not_skipped(
    kafka_bootstrap: str,
    topic: str,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await producer.send_and_wait(topic, b'{"n": 1}', key=KEY, headers=ce_headers("ev-1"))
    await producer.send_and_wait(topic, b'{"n": 2}', key=KEY, headers=ce_headers("ev-2"))
    calls: list[tuple[str, float]] = []

    async def handler(inbound: Inbound) -> None:
        calls.append((inbound.id, time.monotonic()))
        if len(calls) == 1:
            raise RuntimeError("database is restarting")

    tp = TopicPartition(topic, first.partition)
    with caplog.at_level(logging.ERROR, logger="infra.eventlog.intake_topic"):
        async with running(reader(kafka_bootstrap, topic, handler)):
            await until(lambda: len(calls) == 3)
            await until_committed(kafka_bootstrap, f"{topic}.group", tp, first.offset + 2)

    assert [c[0] for c in calls] == ["ev-1", "ev-1", "ev-2"]
    assert calls[1][1] - calls[0][1] >= 0.9  # after the first pause (1 s)
    assert "database is restarting" in caplog.text and "trying again in 1 s" in caplog.text
    assert await dead_letters(kafka_bootstrap, topic, 0) == []


async def test_stop_is_prompt_even_while_waiting_to_retry(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    await producer.send_and_wait(topic, b"{}", key=KEY, headers=ce_headers("ev-1"))
    calls: list[str] = []

    async def handler(inbound: Inbound) -> None:
        calls.append(inbound.id)
        raise RuntimeError("always")

    stop = asyncio.Event()
    task = asyncio.create_task(reader(kafka_bootstrap, topic, handler).run(stop))
    await until(lambda: len(calls) == 1)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 1.5
    assert calls == ["ev-1"]

    # Already set: returns without touching the broker.
    started = time.monotonic()
    await reader(kafka_bootstrap, topic, handler).run(stop)
    assert time.monotonic() - started < 0.1


async def test_unreachable_broker_is_retried_and_stop_still_prompt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(inbound: Inbound) -> None:
        raise AssertionError("nothing to read")

    dead = f"127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="infra.eventlog.intake_topic"):
        task = asyncio.create_task(reader(dead, "nowhere.intake", handler).run(stop))
        await asyncio.sleep(1.5)
        assert not task.done()  # failing to connect does not end the loop
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 0.5
    assert "trying again in 1 s" in caplog.text


def test_refused_carries_its_reason() -> None:
    refusal = Refused("title: too short")
    assert refusal.reason == str(refusal) == "title: too short"
