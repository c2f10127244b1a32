"""The one way to retry in process: exponential backoff with jitter, from tenacity.

Used wherever a step may fail for a while and must be tried again (a consumer's handler, the
outbox relay, the commit listener, parking on Kafka, recording a sent notice). What must survive
a restart is not retried here but kept as data: a notice's `next_attempt_at`, a clock's row.

    async for attempt in retrying("outbox relay: publish"):
        with attempt:
            await publish()
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


def retrying(
    what: str,
    *,
    attempts: int | None = None,
    first: float = 0.2,
    most: float = 5.0,
    on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    failed: Callable[[BaseException], None] = lambda _: None,
) -> AsyncRetrying:
    """Try again after `first` seconds, doubling up to `most`, with up to `first` of jitter;
    forever, or `attempts` times in all, then re-raise the last error.

    Only errors of type `on` are retried (cancellation never is). Each failure is logged with
    `what` and handed to `failed` (e.g. to mark a health flag) before the wait.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is None:
            return
        failed(error)
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s failed (attempt %d), trying again in %.1f s: %s: %s",
            what,
            state.attempt_number,
            wait,
            type(error).__name__,
            error,
        )

    return AsyncRetrying(
        wait=wait_exponential_jitter(multiplier=first, max=most, jitter=first),
        stop=stop_after_attempt(attempts) if attempts is not None else stop_never,
        retry=retry_if_exception_type(on),
        before_sleep=before_sleep,
        reraise=True,
    )
