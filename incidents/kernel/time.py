"""Time: the clock every use case is handed, and waiting to be woken.

Use cases never read the wall clock themselves; they take `now` (a `Now`), so tests move time by
hand and the policy engine stays pure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

Now = Callable[[], datetime]


def system_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


async def wait_for_wake(wake: asyncio.Event, seconds: float) -> None:
    """Sleep until `wake` is set or `seconds` pass: wake-ups come from this process, the timeout
    catches work that other processes committed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
