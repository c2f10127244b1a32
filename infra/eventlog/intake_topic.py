"""Reading the intake topic: incidents that other city systems publish to Kafka.

AI monitoring tools publish each incident to `ai-incidents.intake` as a CloudEvent 1.0 in binary
mode: the attributes travel as `ce_*` headers (`ce_id`, `ce_source`, `ce_type`,
`ce_specversion`, and maybe `ce_time`, `ce_subject`), `content-type: application/json`, and the
value is the JSON of the event's data. This module only carries records: it hands each one to a
callback as an `Inbound` and knows nothing of reports.

| topic                      | partitions | retention (when created here) |
| -------------------------- | ---------- | ----------------------------- |
| `ai-incidents.intake`      | 6          | 14 days                       |
| `ai-incidents.intake.dlt`  | 1          | forever                       |

What happens to a record:

- it lacks one of the four required attributes: it goes to the dead-letter topic, unseen by the
  handler, with `x-error` saying what is missing;
- the handler returns: its offset is committed;
- the handler raises `Refused`: the record goes to the dead-letter topic with the reason in
  `x-error` (and where it came from in `x-original-partition`, `x-original-offset`), and once
  the broker has it, its offset is committed;
- the handler raises anything else: nothing is committed, and the same record is handed over
  again after a pause (1 s, 2 s, 4 s, ... up to 30 s); the records behind it in its partition
  wait, those of other partitions flow on.

Records of one partition are handled one at a time, in order. A record may be handed over twice
(after a crash between handling and commit, or a rebalance), so the handler must be idempotent,
for instance on `Inbound.id` together with `Inbound.source`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from incidents.kernel.retry import retrying
from infra.eventlog.kafka import (
    DLT_PARTITIONS,
    MAIN_RETENTION_MS,
    PARK_HEADERS,
    PARTITIONS,
    create_missing,
)

log = logging.getLogger(__name__)

TOPIC = "ai-incidents.intake"
GROUP = "ai-incidents.intake"
SPECVERSION = "1.0"
REQUIRED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_specversion")

POLL_SECONDS = 0.5
MAX_RECORDS = 100
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# Once `stop` is set, a commit or a dead-letter write under way gets this long to finish, so that
# a record already handled is not handed over again after the restart just for want of a moment.
STOP_GRACE_SECONDS = 5.0
CLOSE_SECONDS = 5.0

# Settings from `consumer_config` that say how to reach the cluster (TLS, SASL, timeouts); the
# producer for dead letters and the admin client that creates topics need them too.
CONNECTION_SETTINGS = frozenset(
    {
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "sasl_oauth_token_provider",
        "request_timeout_ms",
        "connections_max_idle_ms",
        "metadata_max_age_ms",
        "retry_backoff_ms",
    }
)

T = TypeVar("T")


class Refused(Exception):
    """The handler refuses a record for good (invalid); `reason` in plain words goes with it to the
    dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Inbound:
    """One record of the intake topic, as the handler sees it."""

    id: str  # ce_id
    source: str  # ce_source
    type: str  # ce_type
    data: Any  # the value parsed as JSON; None if it is not JSON (the handler decides)
    raw_value: bytes
    headers: list[tuple[str, bytes]]


Handler = Callable[[Inbound], Awaitable[None]]


def intake_dlt(topic: str) -> str:
    """The dead-letter topic of an intake topic."""
    return f"{topic}.dlt"


def _connection_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k in CONNECTION_SETTINGS}


async def init_intake_topics(
    bootstrap: str,
    topic: str = TOPIC,
    *,
    partitions: int = PARTITIONS,
    replication_factor: int = 1,
    client_config: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the intake topic and its dead-letter topic if they are missing; returns those created.

    The reader calls this with one replica, which is right for a single broker only; on a cluster
    run it once beforehand with the replication factor wanted (a topic that exists is left as it
    is). `kafka.init_topics` cannot do it: it names dead-letter topics after a consumer.
    """
    durability = {"min.insync.replicas": "2"} if replication_factor > 1 else {}
    wanted = [
        NewTopic(
            topic,
            partitions,
            replication_factor,
            topic_configs={"retention.ms": str(MAIN_RETENTION_MS), **durability},
        ),
        NewTopic(
            intake_dlt(topic),
            DLT_PARTITIONS,
            replication_factor,
            topic_configs={"retention.ms": "-1", **durability},
        ),
    ]
    return await create_missing(bootstrap, wanted, replication_factor, client_config=client_config)


def read_inbound(record: ConsumerRecord[Any, Any]) -> Inbound | str:
    """The record as an `Inbound`, or, if it is not a CloudEvent 1.0 in binary mode, why not."""
    headers = [(name, bytes(value or b"")) for name, value in record.headers or ()]
    first: dict[str, bytes] = {}
    for name, value in headers:
        first.setdefault(name.lower(), value)
    missing = [h for h in REQUIRED_HEADERS if not first.get(h)]
    if missing:
        return f"not a CloudEvent: missing {', '.join(missing)}"
    attributes: dict[str, str] = {}
    for name in REQUIRED_HEADERS:
        try:
            attributes[name] = first[name].decode("utf-8")
        except UnicodeDecodeError:
            return f"not a CloudEvent: {name} is not UTF-8"
    if attributes["ce_specversion"] != SPECVERSION:
        return f"not a CloudEvent 1.0: ce_specversion is {attributes['ce_specversion']!r}"
    raw = bytes(record.value or b"")
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        data = None
    return Inbound(
        id=attributes["ce_id"],
        source=attributes["ce_source"],
        type=attributes["ce_type"],
        data=data,
        raw_value=raw,
        headers=headers,
    )


def dead_letter_headers(
    original: Iterable[tuple[str, bytes | None]], *, error: str, partition: int, offset: int
) -> list[tuple[str, bytes | None]]:
    """The original headers, less any parking headers of an earlier round, plus why and whence."""
    kept = [(k, v) for k, v in original if k not in PARK_HEADERS]
    return kept + [
        ("x-error", error.encode("utf-8")),
        ("x-original-partition", str(partition).encode()),
        ("x-original-offset", str(offset).encode()),
    ]


class _Stopped(Exception):
    """`stop` was set while waiting on the broker."""


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, T], grace: float) -> T:
    """Await `work`; once `stop` is set, give it `grace` seconds more, then cancel it and raise
    `_Stopped`."""
    task = asyncio.ensure_future(work)
    try:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            await asyncio.wait({task}, timeout=grace)
        if task.done():
            return task.result()
        raise _Stopped
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Pause `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _backoff(failures: int) -> float:
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0 ** (failures - 1))


def _where(record: ConsumerRecord[Any, Any]) -> str:
    return f"{record.topic}/{record.partition}@{record.offset}"


class IntakeTopicReader:
    """Hands each record of the intake topic to `handler`, as one member of consumer group
    `group`; `run` until `stop` is set.

    Offsets are committed by hand, one record at a time, only once the record is handled or safely
    on the dead-letter topic. A broker that cannot be reached is logged and tried again (1 s, 2 s,
    ... up to 30 s); it never ends `run`.
    """

    def __init__(
        self,
        bootstrap: str,
        handler: Handler,
        *,
        topic: str = TOPIC,
        group: str = GROUP,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        """`consumer_config`: more AIOKafkaConsumer settings (TLS, SASL, session timeouts); those
        that say how to reach the cluster are used for the dead-letter producer too."""
        self.bootstrap = bootstrap
        self.handler = handler
        self.topic = topic
        self.dlt = intake_dlt(topic)
        self.group = group
        self.consumer_config = dict(consumer_config or {})
        self._connection = _connection_settings(self.consumer_config)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        # A partition whose record failed is paused until then (event loop time)...
        self._held: dict[TopicPartition, float] = {}
        # ...and how often that record (its offset) has failed in a row, for the next pause.
        self._failures: dict[TopicPartition, tuple[int, int]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Read and hand over records until `stop` is set; then close and return.

        A handler already running when `stop` is set may finish; the commit after it gets a few
        seconds. Everything else (polling, pauses, reconnecting) gives way at once.
        """
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if self._consumer is None:
                        await _unless_stopped(stop, self._connect(), grace=0)
                        log.info("intake: reading %s as group %s", self.topic, self.group)
                    assert self._consumer is not None
                    await self._round(stop, self._consumer)
                    failures = 0
                except _Stopped:
                    break
                except Exception as exc:
                    failures += 1
                    pause = _backoff(failures)
                    log.error(
                        "intake: reading %s failed (%s: %s); trying again in %.0f s",
                        self.topic,
                        type(exc).__name__,
                        exc,
                        pause,
                    )
                    await self.close()
                    await _sleep(stop, pause)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the consumer and the dead-letter producer, if started."""
        self._held.clear()
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        for client in (consumer, producer):
            if client is None:
                continue
            try:
                # A broker that does not answer must not hold up a shutdown.
                await asyncio.wait_for(client.stop(), CLOSE_SECONDS)
            except Exception as exc:
                log.warning("intake: closing a Kafka client: %s: %s", type(exc).__name__, exc)

    # --- connecting ------------------------------------------------------------------------------

    async def _connect(self) -> None:
        await init_intake_topics(self.bootstrap, self.topic, client_config=self._connection)
        options: dict[str, Any] = {
            "client_id": "ai-incidents-intake",
            "auto_offset_reset": "earliest",
            **self.consumer_config,
            "bootstrap_servers": self.bootstrap,
            "group_id": self.group,
            "enable_auto_commit": False,
        }
        consumer = AIOKafkaConsumer(self.topic, **options)
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self._consumer = consumer

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            # acks="all": a dead letter counts once every in-sync replica has it. No idempotent
            # producer: Tansu lacks it, and a duplicate dead letter does no harm.
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id="ai-incidents-intake-dlt",
                acks="all",
                enable_idempotence=False,
                **self._connection,
            )
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    # --- reading ---------------------------------------------------------------------------------

    async def _round(self, stop: asyncio.Event, consumer: AIOKafkaConsumer) -> None:
        """One poll, and every record it brings, partition by partition, in order."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        assigned = consumer.assignment()
        for tp, due in list(self._held.items()):
            if due <= now:
                del self._held[tp]
                if tp in assigned:  # else it went to another member in a rebalance
                    consumer.resume(tp)
        wait = min([POLL_SECONDS, *(due - now for due in self._held.values())])
        batches = await consumer.getmany(
            timeout_ms=max(0, int(wait * 1000)), max_records=MAX_RECORDS
        )
        for tp, records in batches.items():
            for record in records:
                if stop.is_set():
                    return  # the rest is not committed, so it is read again next time
                if not await self._take(stop, consumer, tp, record):
                    break

    async def _take(
        self,
        stop: asyncio.Event,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
    ) -> bool:
        """Handle or park one record, then commit it; False if the rest of its partition's batch
        must wait (it failed, or the partition is no longer ours)."""
        inbound = read_inbound(record)
        if isinstance(inbound, str):
            await self._park(stop, record, inbound)
        else:
            try:
                await self.handler(inbound)
            except Refused as refusal:
                await self._park(stop, record, refusal.reason)
            except Exception:
                self._hold(consumer, tp, record, inbound)
                return False
        self._failures.pop(tp, None)
        try:
            await _unless_stopped(
                stop, consumer.commit({tp: record.offset + 1}), grace=STOP_GRACE_SECONDS
            )
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced: the partition's new owner reads from the last commit and hands
            # this record over again; the handler is idempotent.
            log.warning("intake: commit of %s lost to a rebalance: %s", _where(record), exc)
            return False
        return True

    def _hold(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
        inbound: Inbound,
    ) -> None:
        """Read the failed record again after a pause; meanwhile its partition is paused, and the
        other partitions are still read (a wait in place would stall them and, past
        `max_poll_interval_ms`, cost the group membership)."""
        offset, failures = self._failures.get(tp, (record.offset, 0))
        failures = failures + 1 if offset == record.offset else 1
        self._failures[tp] = (record.offset, failures)
        pause = _backoff(failures)
        log.error(
            "intake: handling %s (ce_id %s from %s) failed (attempt %d); trying again in %.0f s",
            _where(record),
            inbound.id,
            inbound.source,
            failures,
            pause,
            exc_info=failures == 1,  # the traceback once; then one line a try
        )
        try:
            consumer.seek(tp, record.offset)
            consumer.pause(tp)
        except IllegalStateError:
            return  # no longer ours: the new owner starts from the last commit
        self._held[tp] = asyncio.get_running_loop().time() + pause

    async def _park(
        self, stop: asyncio.Event, record: ConsumerRecord[Any, Any], error: str
    ) -> None:
        """Put the record on the dead-letter topic and wait until the broker has it; tried until
        then, since its offset must not be committed before."""
        headers = dead_letter_headers(
            record.headers or (), error=error, partition=record.partition, offset=record.offset
        )

        async def send() -> None:
            async for attempt in retrying(f"intake: parking {_where(record)}", on=KafkaError):
                with attempt:
                    producer = await self._started_producer()
                    await producer.send_and_wait(
                        self.dlt, value=record.value, key=record.key, headers=headers
                    )

        await _unless_stopped(stop, send(), grace=STOP_GRACE_SECONDS)
        log.warning("intake: parked %s on %s: %s", _where(record), self.dlt, error)
