"""Pytest fixtures for the real services; a conftest takes them with
`from tests.harness.fixtures import *`.

| fixture           | scope    | yields                                                         |
| ----------------- | -------- | -------------------------------------------------------------- |
| `kafka_broker`    | session  | `Broker`: `.bootstrap`, `.pause()`/`.resume()` (SIGSTOP/CONT)  |
| `kafka_bootstrap` | session  | "host:port" of that broker                                     |
| `kafka_topic`     | function | a fresh events topic (6 partitions), so tests don't mix        |
| `postgres_server` | session  | `PostgresServer` (found, or started with pgserver)             |
| `postgres_url`    | function | `postgresql+asyncpg://.../<fresh empty database>`, dropped after |
| `database_url`    | function | parametrized: a fresh SQLite file, then a PostgreSQL database  |
| `smtp_server`     | function | a started `SMTPServer`: `.host`, `.port`, `.messages`, `.fail()` |
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness.kafka import Broker
from tests.harness.postgres import PostgresServer, find_or_start
from tests.harness.smtp import SMTPServer

__all__ = [
    "kafka_broker",
    "kafka_bootstrap",
    "kafka_topic",
    "postgres_server",
    "postgres_url",
    "database_url",
    "smtp_server",
]


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    try:
        broker = Broker.start()
    except Exception as exc:
        pytest.fail(f"no Kafka broker for the tests: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
async def kafka_topic(kafka_bootstrap: str) -> str:
    from infra.eventlog.kafka import init_topics

    topic = f"test-{uuid.uuid4().hex[:12]}.events"
    await init_topics(kafka_bootstrap, topic=topic)
    return topic


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = find_or_start()
    except Exception as exc:
        pytest.fail(f"no PostgreSQL for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    name = await postgres_server.create_database()
    try:
        yield postgres_server.sqlalchemy_url(name)
    finally:
        await postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'incidents.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = await server.create_database()
    try:
        yield server.sqlalchemy_url(name)
    finally:
        await server.drop_database(name)


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()
