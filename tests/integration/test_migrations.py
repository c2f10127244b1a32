"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from infra.db import make_engine
from infra.migrate import (
    alembic_config,
    create_schema,
    current_revision,
    migrate,
    schema_diff,
)
from tests.harness.fixtures import *  # noqa: F403


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(schema_diff)
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    await migrate(database_url)
    assert await current_revision(database_url) == head()
    assert await diff(database_url) == [], (
        "a model (incidents/tables.py) changed without a migration: run\n"
        '  python -m infra.migrate revision "what changed" <url of an empty database>'
    )
    await migrate(database_url)  # twice: nothing to do, no error
    assert await current_revision(database_url) == head()


async def test_a_database_made_by_create_all_is_adopted(database_url: str) -> None:
    engine = make_engine(database_url)
    await create_schema(engine)
    await engine.dispose()
    await migrate(database_url)
    assert await current_revision(database_url) == head()
    assert await diff(database_url) == []
