"""The composition root: settings in, a running service's parts out. The only place parts meet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from consumers.cases import Cases
from consumers.notifier import Notifier
from consumers.reviews import Reviews
from consumers.router import Router
from consumers.runner import Consumer, ConsumerRunner, EventSource, types_of
from incidents.intake import published
from incidents.intake import service as mail
from incidents.intake.model import Outcome
from incidents.kernel.errors import InvalidInput
from incidents.kernel.time import Now, system_now
from incidents.kernel.unit_of_work import UnitOfWorkFactory
from incidents.obligations.clocks import fire_due_clocks
from incidents.policy import PolicySet, load_directory, load_packs
from incidents.policy.loader import DEMO_DIRECTORY
from incidents.policy.overrides import apply_interpretations
from incidents.record.model import AuditEntry
from incidents.reports.intake import Intake
from incidents.reports.schemas import parse_report
from incidents.systems import service as systems
from infra.clocks import ClockKeeper
from infra.db import is_sqlite, make_engine, make_sessions
from infra.eventlog import dead_letters
from infra.eventlog.commit_signal import CHANNEL, CommitListener
from infra.eventlog.embedded import EmbeddedLog
from infra.eventlog.intake_topic import Inbound, IntakeTopicReader, Refused
from infra.eventlog.kafka import KafkaPublisher, KafkaSource
from infra.eventlog.relay import OutboxRelay
from infra.migrate import migrate
from infra.settings import Settings
from notifications.inbound import Verdict
from notifications.inbound.imap import MailboxReader
from notifications.inbound.smtp import Receiver, start_receiver
from notifications.outbound.delivery import Delivery
from notifications.outbound.mailer import Mailer, mailer_for

log = logging.getLogger(__name__)

# Every consumer group, for `incidents kafka init` (each has a dead-letter topic).
# How long each part of the service is given to stop when it closes.
CLOSE_SECONDS = 10.0
CONSUMER_NAMES = (Notifier.name, Router.name, Cases.name, Reviews.name)


def load_policy(settings: Settings) -> PolicySet:
    """The active packs with this deployment's readings, the directory and the holidays.

    Raises PolicyError naming the file and the problem, so start-up stops with something an
    administrator can act on.
    """
    packs = apply_interpretations(load_packs(settings.policy), settings.interpretations)
    directory = load_directory(settings.directory or DEMO_DIRECTORY)
    return PolicySet(packs=tuple(packs), directory=directory, holidays=frozenset(settings.holidays))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    uows: UnitOfWorkFactory
    intake: Intake
    policy: PolicySet
    secret: bytes
    base_url: str
    now: Now
    log: EmbeddedLog | None  # the database log; None when Kafka carries the events
    publisher: KafkaPublisher | None  # None in the embedded mode
    relay: OutboxRelay | None  # hands committed events to Kafka; None in the embedded mode
    listener: CommitListener | None  # hears other processes commit events; None on SQLite
    mailer: Mailer
    consumers: list[Consumer]
    delivery: Delivery
    clocks: ClockKeeper
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _relaying: bool = False
    _receivers: list[Receiver] = field(default_factory=list)
    _stop_mail: asyncio.Event = field(default_factory=asyncio.Event)

    def source(self, consumer: Consumer) -> EventSource:
        """Where a consumer reads: its Kafka consumer group, or its place in the database log."""
        if self.log is not None:
            return self.log.source(consumer.name, types_of(consumer))
        assert self.settings.kafka_bootstrap is not None
        return KafkaSource(
            self.settings.kafka_bootstrap,
            consumer.name,
            types_of(consumer),
            topic=self.settings.kafka_topic,
            consumer_config=self.settings.kafka_consumer_options,
        )

    def runners(self, names: set[str] | None = None) -> list[ConsumerRunner]:
        unknown = (names or set()) - {c.name for c in self.consumers}
        if unknown:
            known = ", ".join(c.name for c in self.consumers)
            raise ValueError(f"no consumer named {', '.join(sorted(unknown))}; they are: {known}")
        chosen = [c for c in self.consumers if names is None or c.name in names]
        return [ConsumerRunner(c, self.source(c), self.uows, self.now) for c in chosen]

    async def parked(self, consumer: str | None = None) -> list[dict[str, Any]]:
        """Events parked by one consumer (or every one), with the reason (`incidents dlq`)."""
        return await dead_letters.list_parked(
            self.uows,
            consumer,
            kafka_bootstrap=self.settings.kafka_bootstrap,
            topic=self.settings.kafka_topic,
        )

    async def replay_parked(self, consumer: str) -> int:
        """Send a consumer's parked events back to it; returns how many."""
        [runner] = self.runners({consumer})
        return await dead_letters.replay(
            self.uows,
            consumer,
            runner.process,
            kafka_bootstrap=self.settings.kafka_bootstrap,
            topic=self.settings.kafka_topic,
        )

    async def start_workers(
        self, consumers: set[str] | None = None, *, clocks: bool = True
    ) -> None:
        """Run the outbox relay, consumers, mail delivery and (optionally) the clock keeper in
        this process.

        The relay runs here, not in web instances: a web instance then only writes to its
        database, and its CPU goes to answering staff. Workers hear of events that web
        instances commit at once, through the database (`listener`); several relays are safe
        (one publishes at a time).
        """
        if self.relay is not None and self.publisher is not None and not self._relaying:
            self._relaying = True
            await self.publisher.start()
            self._tasks.append(asyncio.create_task(self.relay.run(), name="relay"))
        if self.listener is not None:
            self.listener.start()
        if is_sqlite(self.engine):
            await self.delivery.release_claims()  # this process is the database's only user
        for runner in self.runners(consumers):
            self._tasks.append(asyncio.create_task(runner.run(), name=runner.consumer.name))
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        if clocks:
            self.clocks.start()
        await self.start_mail_intake()
        if self.settings.kafka_bootstrap is not None:
            reader = IntakeTopicReader(
                self.settings.kafka_bootstrap,
                self.receive_published,
                topic=self.settings.kafka_intake_topic,
                group=f"{self.settings.kafka_intake_topic}.intake",
                consumer_config=self.settings.kafka_consumer_options,
            )
            self._tasks.append(
                asyncio.create_task(reader.run(self._stop_mail), name="the intake topic")
            )

    async def receive_published(self, inbound: Inbound) -> None:
        """File the report another system published on the intake topic, once per event;
        Refused (to the topic's dead letters, with why) when it is not a report."""
        event = published.Published(
            id=inbound.id, source=inbound.source, type=inbound.type, data=inbound.data
        )
        try:
            published.check(event)
            async with self.uows() as uow:
                report = await systems.with_name(parse_report(event.data), uow=uow)
        except InvalidInput as exc:
            raise Refused(str(exc)) from None
        for _ in range(2):  # a second delivery racing the first finds it on the second look
            try:
                async with self.uows() as uow:
                    await published.file_published(
                        event, report, uow=uow, policy=self.policy, now=self.now()
                    )
                return
            except IntegrityError:
                continue

    async def receive_mail(self, raw: bytes) -> Verdict:
        """Keep one message that came in, and file, thread, ignore or quarantine it; returns
        once it is stored (the mailbox may then move it, the receiver answer 250)."""
        rules = await self.mail_rules()
        async with self.uows() as uow:
            kept = await mail.receive(raw, uow=uow, policy=self.policy, rules=rules, now=self.now())
        return "quarantined" if kept.outcome is Outcome.QUARANTINED else "processed"

    async def mail_rules(self) -> mail.MailRules:
        async with self.uows() as uow:
            names = [s.name for s in await systems.inventory(uow=uow)]
        sender = parseaddr(self.settings.mail_from)[1].lower()
        domains = self.settings.mail_intake_domains
        return mail.MailRules(
            own_addresses=frozenset({sender} if sender else ()),
            allowed_domains=frozenset(d.strip().lower() for d in domains.split(",") if d.strip()),
            per_sender_per_hour=self.settings.mail_intake_per_hour,
            inventory=tuple(names),
        )

    async def start_mail_intake(self) -> None:
        """Read the mailboxes and open the receivers INCIDENTS_MAIL_INTAKE names."""
        for url in self.settings.mail_sources():
            if url.startswith(("smtp://", "lmtp://")):
                receiver = await start_receiver(url, self.receive_mail)
                self._receivers.append(receiver)
                log.info("mail intake: listening at %s", receiver.url)
            else:
                reader = MailboxReader(url, self.receive_mail)
                self._tasks.append(
                    asyncio.create_task(reader.run(self._stop_mail), name=repr(reader))
                )
                log.info("mail intake: reading %r", reader)

    async def record_settings(self, by: str) -> None:
        """Put this instance's settings on the record when they differ from the last recorded:
        a setting changed between restarts shows, with its old and new value."""
        current = self.settings.recordable()
        async with self.uows() as uow:
            last = (
                await uow.session.exec(
                    select(AuditEntry)
                    .where(AuditEntry.action == "settings.changed")
                    .order_by(col(AuditEntry.seq).desc())
                    .limit(1)
                )
            ).first()
            before: dict[str, str] = dict(last.data["settings"]) if last else {}
            changed = sorted(k for k in current if before.get(k) != current[k])
            if changed:
                uow.record(
                    "settings.changed",
                    subject="settings",
                    actor=by,
                    at=self.now(),
                    data={
                        "changed": {k: {"from": before.get(k), "to": current[k]} for k in changed},
                        "settings": current,
                    },
                )

    async def close(self) -> None:
        """Stop every part. Each is given CLOSE_SECONDS: one that does not stop in time is
        logged and left behind, so stopping the service (or a test's teardown) never hangs."""
        self._stop_mail.set()
        for receiver in self._receivers:
            await self._within("the mail receiver", receiver.close())
        self._receivers.clear()
        await self._within("intake", self.intake.close())
        self.clocks.stop()
        if self.listener is not None:
            await self._within("the commit listener", self.listener.stop())
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            done, stuck = await asyncio.wait(self._tasks, timeout=CLOSE_SECONDS)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("closing: %s had failed: %s", task.get_name(), task.exception())
            for task in stuck:
                log.error("closing: %s did not stop within %s s", task.get_name(), CLOSE_SECONDS)
        self._tasks.clear()
        if self._relaying and self.publisher is not None:
            self._relaying = False
            await self._within("the Kafka publisher", self.publisher.stop())
        await self._within("the mailer", self.mailer.close())
        await self._within("the database pool", self.engine.dispose())

    @staticmethod
    async def _within(what: str, step: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(step, CLOSE_SECONDS)
        except TimeoutError:
            log.error("closing: %s did not stop within %s s; going on", what, CLOSE_SECONDS)


async def build(
    settings: Settings,
    *,
    now: Now = system_now,
    base_url: str = "http://127.0.0.1:8080",
    mailer: Mailer | None = None,
) -> Runtime:
    policy = load_policy(settings)  # before anything else: a bad pack stops start-up at once
    url = settings.resolved_database_url()
    await migrate(url)  # idempotent, and locked on PostgreSQL: every instance may run it
    engine = make_engine(url)
    readers: list[Callable[[], None]] = []  # what to wake when events are committed

    def events_committed() -> None:
        for wake in readers:
            wake()

    uows = UnitOfWorkFactory(
        make_sessions(engine),
        # Readers of the database log follow seq order; Kafka mode has no such readers.
        serialize_events=not is_sqlite(engine) and not settings.kafka_bootstrap,
        notify_channel=None if is_sqlite(engine) else CHANNEL,
        on_events=events_committed,
    )
    await systems.adopt_directory(policy.directory, uows=uows, now=now())
    embedded: EmbeddedLog | None = None
    publisher: KafkaPublisher | None = None
    relay: OutboxRelay | None = None
    if settings.kafka_bootstrap:
        publisher = KafkaPublisher(settings.kafka_bootstrap, topic=settings.kafka_topic)
        relay = OutboxRelay(uows, publisher)
        readers.append(relay.wake)
    else:
        embedded = EmbeddedLog(uows)
        readers.append(embedded.wake)
    secret = settings.resolved_secret_key()
    base = (settings.base_url or base_url).rstrip("/")
    smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url is not None else None
    mailer = mailer or mailer_for(
        smtp_url, settings.outbox_mail_dir, connections=settings.smtp_connections
    )
    delivery = Delivery(
        uows,
        mailer,
        now,
        sender=settings.mail_from,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
    )
    mail_domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "ai-incidents.local"
    consumers: list[Consumer] = [
        Notifier(
            base_url=base, secret=secret, mail_domain=mail_domain, wake_delivery=delivery.wake
        ),
        Router(policy=policy),
        Cases(policy=policy),
        Reviews(policy=policy),
    ]
    return Runtime(
        settings=settings,
        engine=engine,
        uows=uows,
        intake=Intake(uows, policy, now),
        policy=policy,
        secret=secret,
        base_url=base,
        now=now,
        log=embedded,
        publisher=publisher,
        relay=relay,
        # SQLite is one process's database: its readers are woken in process.
        listener=None if is_sqlite(engine) else CommitListener(engine, events_committed),
        mailer=mailer,
        consumers=consumers,
        delivery=delivery,
        clocks=ClockKeeper(uows, now, fire_due_clocks, tick_seconds=settings.clock_tick_seconds),
    )
