"""One retry policy for all outbound work: exponential backoff with jitter, honouring Retry-After."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from chathooks.http import OutboundError
from workers.once import Busy


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (n ≥ 2) waits ``base·2^(n-2)`` capped at ``cap``, jittered to between half and all of it.

    Defaults wait up to 2, 4, 8, 16, 32, 64 and 128 s before attempts 2–8: eight attempts within about four
    minutes, each wait far below the broker's visibility timeout because no wait is ever held by the broker.
    """

    base: float = 2.0
    cap: float = 300.0
    max_attempts: int = 8
    retry_after_cap: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before ``attempt`` (the first retry is attempt 2)."""
        ceiling = min(self.cap, self.base * 2 ** max(attempt - 2, 0))
        jittered = ceiling / 2 + (rng or random).random() * ceiling / 2
        if retry_after is not None:
            return max(jittered, min(retry_after, self.retry_after_cap))
        return jittered


def describe(exc: BaseException) -> dict[str, Any]:
    """A failure as recorded with the retry and in the dead-letter store (no secrets: clients redact)."""
    if isinstance(exc, OutboundError):
        info = exc.to_dict()
    else:
        info = {"type": type(exc).__name__, "message": str(exc)[:500]}
    info["transient"] = is_transient(exc)
    info["at"] = time.time()
    return info


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OutboundError):
        return exc.transient
    # A soft time limit means the task ran long (a slow API, say): worth another attempt.
    return isinstance(exc, (Busy, SoftTimeLimitExceeded, redis.ConnectionError, redis.TimeoutError))


def spends_no_attempt(exc: BaseException) -> bool:
    """Waiting that is no failure: a claim held elsewhere (it lapses within its lease at the latest), or an
    organization over its own rate (its bucket refills): retried as often as it takes, never dead-lettered."""
    return isinstance(exc, Busy) or (isinstance(exc, OutboundError) and exc.type == "rate_limited")


def retry_after(exc: BaseException) -> float | None:
    return exc.retry_after if isinstance(exc, OutboundError) else None


def attempts(*effects: Callable[[], None]) -> None:
    """Run independent side effects so one's failure does not keep the others from running.

    Afterwards the first transient error is raised (so the handler is retried; effects already
    done are skipped by their once-guards), else the first permanent one.
    """
    errors: list[Exception] = []
    for effect in effects:
        try:
            effect()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise next((e for e in errors if is_transient(e)), errors[0])
