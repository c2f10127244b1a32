"""The composition root: settings in, a running service's parts out. The only place parts meet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr

from sqlalchemy.ext.asyncio import AsyncEngine

from consumers.delivery import Delivery
from consumers.notifier import Notifier
from consumers.router import Router
from consumers.runner import Consumer, ConsumerRunner, types_of
from incidents.policy import PolicySet, load_directory, load_packs
from incidents.policy.loader import DEMO_DIRECTORY
from incidents.policy.overrides import apply_interpretations, holiday_set
from incidents.unit_of_work import UnitOfWorkFactory
from infra.clocks import ClockKeeper
from infra.db import create_schema, is_sqlite, make_engine, make_sessions
from infra.log_embedded import EmbeddedLog
from infra.settings import Settings
from notifications.mailer import Mailer, mailer_for

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


def load_policy(settings: Settings) -> PolicySet:
    """The active packs with this deployment's readings, the directory and the holidays.

    Raises PolicyError naming the file and the problem, so start-up stops with something an
    administrator can act on.
    """
    packs = apply_interpretations(load_packs(settings.policy), settings.interpretations)
    directory = load_directory(settings.directory or DEMO_DIRECTORY)
    return PolicySet(
        packs=tuple(packs), directory=directory, holidays=frozenset(holiday_set(settings.holidays))
    )


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    uows: UnitOfWorkFactory
    policy: PolicySet
    secret: bytes
    base_url: str
    now: Now
    log: EmbeddedLog
    mailer: Mailer
    consumers: list[Consumer]
    delivery: Delivery
    clocks: ClockKeeper
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def runners(self, names: set[str] | None = None) -> list[ConsumerRunner]:
        chosen = [c for c in self.consumers if names is None or c.name in names]
        return [
            ConsumerRunner(c, self.log.source(c.name, types_of(c)), self.uows, self.now)
            for c in chosen
        ]

    async def start_workers(
        self, consumers: set[str] | None = None, *, clocks: bool = True
    ) -> None:
        """Run consumers, mail delivery and (optionally) the clock keeper in this process."""
        for runner in self.runners(consumers):
            self._tasks.append(asyncio.create_task(runner.run(), name=runner.consumer.name))
        self._tasks.append(asyncio.create_task(self.delivery.run(), name="delivery"))
        if clocks:
            self.clocks.start()

    async def close(self) -> None:
        self.clocks.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.mailer.close()
        await self.engine.dispose()


async def build(
    settings: Settings,
    *,
    now: Now = system_now,
    base_url: str = "http://127.0.0.1:8080",
    mailer: Mailer | None = None,
) -> Runtime:
    policy = load_policy(settings)  # before anything else: a bad pack stops start-up at once
    engine = make_engine(settings.resolved_database_url())
    await create_schema(engine)
    embedded: EmbeddedLog | None = None

    def wake_log() -> None:
        if embedded is not None:
            embedded.wake()

    uows = UnitOfWorkFactory(
        make_sessions(engine),
        serialize_events=not is_sqlite(engine),
        on_events=wake_log,
    )
    embedded = EmbeddedLog(uows)
    secret = settings.resolved_secret_key()
    base = (settings.base_url or base_url).rstrip("/")
    mailer = mailer or mailer_for(settings.smtp_url, settings.outbox_mail_dir)
    delivery = Delivery(uows, mailer, now, sender=settings.mail_from)
    mail_domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "ai-incidents.local"
    consumers: list[Consumer] = [
        Notifier(
            base_url=base, secret=secret, mail_domain=mail_domain, wake_delivery=delivery.wake
        ),
        Router(directory=policy.directory),
    ]
    return Runtime(
        settings=settings,
        engine=engine,
        uows=uows,
        policy=policy,
        secret=secret,
        base_url=base,
        now=now,
        log=embedded,
        mailer=mailer,
        consumers=consumers,
        delivery=delivery,
        clocks=ClockKeeper(uows, now, tick_seconds=settings.clock_tick_seconds),
    )
