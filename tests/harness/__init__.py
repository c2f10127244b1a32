"""Real services for the tests: a Kafka-protocol broker (Tansu), PostgreSQL, an SMTP server.

Each one is taken from an environment variable when set (INCIDENTS_TEST_KAFKA,
INCIDENTS_TEST_POSTGRES_URL), else started here. None is ever skipped silently: a service that
cannot be found or started fails the tests that need it, saying why.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is running here
    (a session fixture first requested by an async test): on a thread of its own."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
