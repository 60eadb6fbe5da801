"""B3's yardstick: the workers' Celery app, configuration and all, plus one task that does nothing.

Run as ``celery -A bench.noop worker`` with the same flags as the real worker.
"""

from __future__ import annotations

from workers import app

NOOP = "bench.noop"


@app.task(name=NOOP)
def noop() -> None:
    """Nothing: what a task costs Celery itself."""
