"""A real Celery beat process for end-to-end tests (it sends ``chathooks.tick`` every second)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.processes import ready
from tests.integration.processes import Process


def start_beat(env: dict[str, str], log_dir: Path, name: str = "beat") -> Process:
    """Start ``celery -A workers beat`` with its schedule file under ``log_dir``; return once it has started.

    The caller stops it (append it to the ``processes`` fixture's list).
    """
    schedule = log_dir / f"{name}-schedule"
    beat = Process(name, [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel=INFO",
                          "--schedule", str(schedule)], env, log_dir)
    return ready(beat, lambda: "beat: Starting..." in beat.log(), "start", timeout=30)
