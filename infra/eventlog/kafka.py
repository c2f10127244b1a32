"""Kafka as the event log: topics, the CloudEvents mapping, a consumer source, the relay's producer.

Topics

| topic                                | partitions | key       | retention (recommended)   |
| ------------------------------------ | ---------- | --------- | ------------------------- |
| `ai-incidents.events`                | 6          | report id | 14 days (`retention.ms`)  |
| `ai-incidents.events.<consumer>.dlt` | 1          | report id | forever (`retention.ms=-1`) |

Every event goes to the one events topic, keyed by the report id (`Envelope.subject`), so all
events of one report land in one partition and are read in the order they were published. Six
partitions let up to six instances of each consumer group share the work. The database keeps every
event too (the outbox rows are never deleted), so the topic's retention only has to cover a
consumer that is down for a while; a parked event stays in its dead-letter topic until someone
replays it, so those topics keep records forever. Each consumer group is `ai-incidents.<consumer>`.

Records are CloudEvents 1.0 in binary mode: the attributes travel as `ce_*` headers (`ce_id`,
`ce_source`, `ce_type`, `ce_specversion`, `ce_time`, `ce_subject`, and `ce_partitionkey`, the
partitioning extension, which is also the record key), `content-type: application/json`, and the
value is the JSON of the event's data. The mapping is done by the `cloudevents` 2.x Kafka binding;
it is lenient when reading (it invents a missing `time`, keeps a value that is not JSON as a
string), so `from_record` also checks that the attributes we rely on are present and that the data
is a JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from incidents.kernel.events import SOURCE, Envelope, EventSchemaError
from incidents.kernel.retry import retrying

log = logging.getLogger(__name__)

TOPIC = "ai-incidents.events"
PARTITIONS = 6
DLT_PARTITIONS = 1
MAIN_RETENTION_MS = 14 * 24 * 3600 * 1000
CONTENT_TYPE = "application/json"
REQUIRED_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time", "ce_subject")
# Headers a parked record carries besides the original ones; dropped again when it is replayed.
PARK_HEADERS = ("x-error", "x-attempts", "x-consumer", "x-original-partition", "x-original-offset")

Headers = list[tuple[str, bytes]]
_FORMAT = JSONFormat()


def group_id(consumer: str, topic: str = TOPIC) -> str:
    """`ai-incidents.<consumer>`; a deployment with its own topic gets its own groups too."""
    return f"ai-incidents.{consumer}" if topic == TOPIC else f"{topic}.{consumer}"


def dlt_topic(consumer: str, topic: str = TOPIC) -> str:
    return f"{topic}.{consumer}.dlt"


def replay_group_id(consumer: str, topic: str = TOPIC) -> str:
    return group_id(f"dlq-replay.{consumer}", topic)


# --- the CloudEvents mapping -------------------------------------------------------------------


def to_record(envelope: Envelope) -> tuple[bytes, bytes, Headers]:
    """An envelope as a Kafka record in CloudEvents binary mode: (key, value, headers)."""
    event = CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": envelope.id,
            "source": SOURCE,
            "type": envelope.type,
            "subject": envelope.subject,
            "time": envelope.time.astimezone(UTC),
            "datacontenttype": CONTENT_TYPE,
            "partitionkey": envelope.subject,
        },
        data=envelope.data,
    )
    message = ce_kafka.to_binary(event, _FORMAT)
    key = message.key.encode() if isinstance(message.key, str) else message.key
    assert key is not None
    return key, message.value, list(message.headers.items())


def from_record(record: ConsumerRecord[Any, Any]) -> Envelope:
    """The envelope in a Kafka record; EventSchemaError if it is not a CloudEvent of ours."""
    try:
        headers = {name.lower(): value for name, value in (record.headers or ())}
        missing = [h for h in REQUIRED_HEADERS if h not in headers]
        if missing:
            raise EventSchemaError(f"not a CloudEvent in binary mode: missing {', '.join(missing)}")
        message = ce_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value or b"")
        event = ce_kafka.from_binary(message, _FORMAT)
        data = event.get_data()
        if not isinstance(data, dict):
            raise EventSchemaError("the CloudEvent's data is not a JSON object")
        time = event.get_time()
        if time is None or time.tzinfo is None:
            raise EventSchemaError("the CloudEvent's time carries no offset")
        return Envelope(
            id=event.get_id(),
            type=event.get_type(),
            subject=event.get_subject() or "",
            time=time.astimezone(UTC),
            data=data,
        )
    except EventSchemaError:
        raise
    except (BaseCloudEventException, ValueError, TypeError, OverflowError) as exc:
        raise EventSchemaError(f"not a valid CloudEvent: {type(exc).__name__}: {exc}") from None


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key.lower() == name:
            return bytes(value).decode("utf-8", "replace")
    return None


def _parked_headers(
    original: Iterable[tuple[str, bytes]],
    *,
    error: str,
    attempts: int,
    consumer: str,
    partition: int | None,
    offset: int | None,
) -> Headers:
    kept = [(k, bytes(v)) for k, v in original if k not in PARK_HEADERS]
    extra = [
        ("x-error", error.encode()),
        ("x-attempts", str(attempts).encode()),
        ("x-consumer", consumer.encode()),
    ]
    if partition is not None and offset is not None:
        extra += [
            ("x-original-partition", str(partition).encode()),
            ("x-original-offset", str(offset).encode()),
        ]
    return kept + extra


# --- topics ------------------------------------------------------------------------------------


class TopicSetupError(Exception):
    """The topics cannot be created as asked; the message says what to change."""


async def init_topics(
    bootstrap: str,
    partitions: int = PARTITIONS,
    consumers: Iterable[str] = (),
    *,
    topic: str = TOPIC,
    replication_factor: int = 1,
) -> list[str]:
    """Create the events topic and each consumer's dead-letter topic; returns those created.

    With more than one replica, a write needs two of them (`min.insync.replicas`), so with the
    relay's `acks=all` an acknowledged event survives the loss of a broker.
    """
    durability = {"min.insync.replicas": "2"} if replication_factor > 1 else {}
    wanted = [
        NewTopic(
            topic,
            partitions,
            replication_factor,
            topic_configs={"retention.ms": str(MAIN_RETENTION_MS), **durability},
        )
    ] + [
        NewTopic(
            dlt_topic(c, topic),
            DLT_PARTITIONS,
            replication_factor,
            topic_configs={"retention.ms": "-1", **durability},
        )
        for c in consumers
    ]
    return await create_missing(
        bootstrap,
        wanted,
        replication_factor,
        hint=" Use --replication-factor {brokers}.",
    )


async def create_missing(
    bootstrap: str,
    wanted: Sequence[NewTopic],
    replication_factor: int,
    *,
    client_config: Mapping[str, Any] | None = None,
    hint: str = "",
) -> list[str]:
    """Create the topics of `wanted` that do not exist yet; the names created. `hint` ends the
    error for too few brokers (`{brokers}` is replaced by what the cluster can take)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **dict(client_config or {}))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        todo = [t for t in wanted if t.name not in existing]
        if not todo:
            return []
        brokers = len((await admin.describe_cluster())["brokers"])
        if replication_factor > brokers:
            # Some brokers (Tansu among them) would accept it and keep fewer copies than asked.
            raise TopicSetupError(
                f"The Kafka cluster has {brokers} broker{'s' if brokers != 1 else ''}; "
                f"a replication factor of {replication_factor} needs at least "
                f"{replication_factor}.{hint.format(brokers=min(brokers, 3))}"
            )
        response = await admin.create_topics(todo)
        created = []
        for name, code, message in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != 36:  # 36: TOPIC_ALREADY_EXISTS (another instance was quicker)
                raise TopicSetupError(f"Kafka refused to create topic {name}: {message} ({code}).")
        return created
    finally:
        await admin.close()


# --- reading: one consumer group -----------------------------------------------------------------


class KafkaSource:
    """A consumer group's events, for `consumers.runner.ConsumerRunner` (the EventSource protocol).

    Offsets are committed only after the runner has handled or parked every event of a batch, so
    a crash redelivers the batch; consumers are idempotent on the event id.
    """

    def __init__(
        self,
        bootstrap: str,
        consumer_name: str,
        types: Iterable[str] | None,
        *,
        topic: str = TOPIC,
        poll_seconds: float = 0.5,
        max_records: int = 500,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        """`consumer_config`: more AIOKafkaConsumer settings (security, session timeouts)."""
        self.bootstrap = bootstrap
        self.consumer_config = consumer_config or {}
        self.consumer_name = consumer_name
        self.types = frozenset(types) if types is not None else None
        self.topic = topic
        self.dlt = dlt_topic(consumer_name, topic)
        self.poll_ms = int(poll_seconds * 1000)
        self.max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._offsets: dict[TopicPartition, int] = {}
        self._records: dict[str, ConsumerRecord[Any, Any]] = {}

    async def start(self) -> None:
        # The bootstrap creates every topic at start-up; this makes sure of ours (idempotent).
        await init_topics(self.bootstrap, consumers=[self.consumer_name], topic=self.topic)
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=group_id(self.consumer_name, self.topic),
            client_id=f"ai-incidents-{self.consumer_name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_records,
            **self.consumer_config,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def next_batch(self) -> Sequence[Envelope]:
        assert self._consumer is not None, "start() first"
        batches = await self._consumer.getmany(
            timeout_ms=self.poll_ms, max_records=self.max_records
        )
        self._records.clear()
        envelopes: list[Envelope] = []
        for tp, records in batches.items():
            if not records:
                continue
            self._offsets[tp] = records[-1].offset + 1
            for record in records:
                ce_type = _header(record, "ce_type")
                if ce_type is not None and self.types is not None and ce_type not in self.types:
                    continue  # another consumer's event; committed with the batch
                try:
                    envelope = from_record(record)
                except EventSchemaError as exc:
                    await self._park_record(record, str(exc), attempts=1)
                    continue
                self._records[envelope.id] = record
                envelopes.append(envelope)
        return envelopes

    async def commit(self) -> None:
        if not self._offsets or self._consumer is None:
            return
        offsets, self._offsets = self._offsets, {}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced since the batch was read: whoever owns those partitions now
            # reads them again from the last commit; handled events are dropped as duplicates.
            log.warning("%s: commit lost to a rebalance: %s", self.consumer_name, exc)

    async def park(self, envelope: Envelope, error: str, attempts: int) -> None:
        record = self._records.get(envelope.id)
        if record is not None:
            await self._park_record(record, error, attempts)
            return
        key, value, headers = to_record(envelope)
        await self._send_parked(
            key,
            value,
            _parked_headers(
                headers,
                error=error,
                attempts=attempts,
                consumer=self.consumer_name,
                partition=None,
                offset=None,
            ),
        )

    async def _park_record(
        self, record: ConsumerRecord[Any, Any], error: str, attempts: int
    ) -> None:
        headers = _parked_headers(
            record.headers or (),
            error=error,
            attempts=attempts,
            consumer=self.consumer_name,
            partition=record.partition,
            offset=record.offset,
        )
        await self._send_parked(record.key, record.value, headers)
        log.warning(
            "%s parked %s/%d@%d: %s",
            self.consumer_name,
            record.topic,
            record.partition,
            record.offset,
            error,
        )

    async def _send_parked(self, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        """Put a record on the dead-letter topic and wait for the broker's ack; retry until then,
        since the batch must not be committed before its parked records are safe."""
        async for attempt in retrying(
            f"{self.consumer_name}: parking on {self.dlt}", on=KafkaError
        ):
            with attempt:
                if self._producer is None:
                    self._producer = AIOKafkaProducer(
                        bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=False
                    )
                    await self._producer.start()
                await self._producer.send_and_wait(self.dlt, value=value, key=key, headers=headers)


# --- writing: the relay's producer ------------------------------------------------------------


class KafkaPublisher:
    """Publishes envelopes to the events topic; `publish` returns once the broker has them all.

    acks="all": a record counts as published once every in-sync replica has it. The idempotent
    producer is off because the Tansu test broker lacks it; per-key order still holds because
    aiokafka keeps at most one request in flight per broker (it has no max_in_flight setting: a
    partition is muted while its batch is in flight, and a retried batch goes before later ones),
    and the relay awaits each batch before reading the next. A retry after a lost ack can publish
    an event twice; consumers drop the second copy by its id.
    """

    def __init__(
        self, bootstrap: str, *, topic: str = TOPIC, request_timeout_ms: int = 30_000
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id="ai-incidents-outbox-relay",
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            request_timeout_ms=self.request_timeout_ms,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Send every envelope, keyed by its report id; return once all are acknowledged."""
        if not envelopes:
            return
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        futures = []
        for envelope in envelopes:
            key, value, headers = to_record(envelope)
            futures.append(
                await self._producer.send(self.topic, value=value, key=key, headers=headers)
            )
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]


# --- dead letters ------------------------------------------------------------------------------


async def _dlt_topics(client: AIOKafkaConsumer, topic: str) -> list[str]:
    prefix, suffix = f"{topic}.", ".dlt"
    return sorted(t for t in await client.topics() if t.startswith(prefix) and t.endswith(suffix))


async def _read_to_end(
    client: AIOKafkaConsumer, partitions: list[TopicPartition], start: dict[TopicPartition, int]
) -> list[ConsumerRecord[Any, Any]]:
    """Records from `start` (or the beginning) to the end offsets as of now, then stop."""
    client.assign(partitions)
    ends = await client.end_offsets(partitions)
    for tp in partitions:
        if tp in start:
            client.seek(tp, start[tp])
        else:
            await client.seek_to_beginning(tp)
    out: list[ConsumerRecord[Any, Any]] = []
    remaining = {tp for tp in partitions if ends[tp] > (await client.position(tp))}
    while remaining:
        batches = await client.getmany(*remaining, timeout_ms=1000)
        for tp, records in batches.items():
            out.extend(r for r in records if r.offset < ends[tp])
        remaining = {tp for tp in remaining if await client.position(tp) < ends[tp]}
    return out


def _describe(record: ConsumerRecord[Any, Any], replayed: bool) -> dict[str, Any]:
    attempts = _header(record, "x-attempts")
    return {
        "event_id": _header(record, "ce_id"),
        "type": _header(record, "ce_type"),
        "subject": _header(record, "ce_subject")
        or (bytes(record.key).decode("utf-8", "replace") if record.key else None),
        "time": _header(record, "ce_time"),
        "error": _header(record, "x-error"),
        "attempts": int(attempts) if attempts and attempts.isdigit() else None,
        "consumer": _header(record, "x-consumer"),
        "parked_at": datetime.fromtimestamp(record.timestamp / 1000, UTC),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "replayed": replayed,
    }


async def list_parked(
    bootstrap: str, consumer: str | None = None, *, topic: str = TOPIC
) -> list[dict[str, Any]]:
    """Every parked record (one consumer's, or all), oldest first, without committing anything.

    `replayed` says whether `replay_parked` has already put it back on the events topic.
    """
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await client.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await client.topics()  # loads metadata for every topic
        names = [dlt_topic(consumer, topic)] if consumer else await _dlt_topics(client, topic)
        out: list[dict[str, Any]] = []
        for name in names:
            parts = client.partitions_for_topic(name)
            if not parts:
                continue
            partitions = [TopicPartition(name, p) for p in sorted(parts)]
            owner = name[len(topic) + 1 : -len(".dlt")]
            # Partitions named: Tansu mis-encodes the answer for "all partitions" (topics=NULL).
            committed = await admin.list_consumer_group_offsets(
                replay_group_id(owner, topic), partitions=partitions
            )
            records = await _read_to_end(client, partitions, {})
            for r in records:
                done = committed.get(TopicPartition(r.topic, r.partition))
                out.append(_describe(r, replayed=done is not None and r.offset < done.offset))
        out.sort(key=lambda d: (d["parked_at"], d["topic"], d["offset"]))
        return out
    finally:
        await admin.close()
        await client.stop()


async def replay_parked(bootstrap: str, consumer: str, *, topic: str = TOPIC) -> int:
    """Put one consumer's parked records back on the events topic (same key, headers without the
    parking ones); returns how many. The replay group's commit makes each record replay once."""
    name = dlt_topic(consumer, topic)
    client = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=replay_group_id(consumer, topic),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await client.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await client.topics()  # loads metadata for every topic
        parts = client.partitions_for_topic(name)
        if not parts:
            return 0
        partitions = [TopicPartition(name, p) for p in sorted(parts)]
        client.assign(partitions)
        start: dict[TopicPartition, int] = {}
        for tp in partitions:
            committed = await client.committed(tp)
            if committed is not None:
                start[tp] = committed
        records = await _read_to_end(client, partitions, start)
        futures = []
        for r in records:
            headers = [(k, bytes(v)) for k, v in (r.headers or ()) if k not in PARK_HEADERS]
            futures.append(await producer.send(topic, value=r.value, key=r.key, headers=headers))
        await asyncio.gather(*futures)
        offsets = {
            tp: max(r.offset for r in records if r.partition == tp.partition) + 1
            for tp in partitions
            if any(r.partition == tp.partition for r in records)
        }
        if offsets:
            await client.commit(offsets)
        return len(records)
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        await client.stop()
