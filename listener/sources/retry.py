"""Retries for collector calls: bounded, exponential with jitter, honouring Retry-After.

A collector wraps each platform call in `call_with_retries` and turns the platform's transient
faults (429, 5xx, timeouts, connection resets) into `TransientError`, passing on the wait the
platform asked for. Anything else propagates at once. When the attempts run out the last
`TransientError` propagates, the pipeline records the failure for this cycle and backs the source
off; the other sources are unaffected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from listener.retrying import run_with_retries
from listener.sources import SourceError

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransientError(SourceError):
    """A fault worth retrying; `retry_after` is the platform's requested wait in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial_delay: float = 1.0
    max_delay: float = 60.0  # longer waits (a 15-minute rate-limit window) end the cycle instead

    def waiter(self) -> Callable[[RetryCallState], float]:
        backoff = wait_exponential_jitter(multiplier=self.initial_delay, max=self.max_delay)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            asked = getattr(error, "retry_after", None)
            if asked is not None:
                if asked > self.max_delay:
                    raise error  # type: ignore[misc]  (wait out the window in a later cycle)
                return max(float(asked), 0.0)
            return backoff(state)

        return wait


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    from listener.models import utcnow

    try:
        return max((parsedate_to_datetime(value) - utcnow()).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def call_with_retries(
    call: Callable[[], T], *, source: str, policy: RetryPolicy | None = None
) -> T:
    """Run `call`, retrying `TransientError` under `policy`; log each retry with the source name."""
    policy = policy or RetryPolicy()
    return run_with_retries(
        call,
        retry=retry_if_exception_type(TransientError),
        attempts=policy.attempts,
        wait=policy.waiter(),
        log=log,
        describe=lambda error: f"source {source}: {error}",
    )
