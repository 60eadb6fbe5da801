"""What keeps a measurement honest: an error budget, and waits that give up."""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.load import LoadResult


class BenchError(RuntimeError):
    """A measurement that would not measure what it claims (failed requests, work never done)."""


def check_errors(side: str, result: LoadResult) -> None:
    """More than 1% failed requests: the figure would describe failures, not the server."""
    if result.errors > 0.01 * (result.requests + result.errors):
        raise BenchError(f"{side}: {result.errors} of {result.requests + result.errors} requests failed")


def wait_until(done: Callable[[], bool], what: str, timeout: float, interval: float = 0.005) -> float:
    """Poll ``done``; the (epoch) time at which it first held, or BenchError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.time()
