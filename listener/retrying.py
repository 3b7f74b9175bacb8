"""One way to retry a call: bounded attempts, a wait strategy, and a log line per retry.

Collectors retry platform faults (`listener.sources.retry`), the daemon retries a briefly
unavailable database (`listener.storage.retry_database`); both go through `run_with_retries`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt
from tenacity.retry import retry_base
from tenacity.wait import WaitBaseT

T = TypeVar("T")


def run_with_retries(
    call: Callable[[], T],
    *,
    retry: retry_base,
    attempts: int,
    wait: WaitBaseT,
    log: logging.Logger,
    describe: Callable[[BaseException | None], str],
) -> T:
    """Run `call`; on a retryable error log `describe(error)` with the attempt, wait, try again.

    The last error propagates once `attempts` are used up (or when `wait` raises it).
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s; retry %d/%d in %.1f s",
            describe(error),
            state.attempt_number,
            attempts - 1,
            state.next_action.sleep if state.next_action else 0.0,
        )

    retrying = Retrying(
        retry=retry,
        stop=stop_after_attempt(attempts),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(call)
