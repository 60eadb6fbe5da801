"""Real processes for end-to-end tests: gunicorn serving the ingress and Celery workers (on ``bench.processes``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from bench import processes
from bench.processes import ROOT, start_celery_worker, start_gunicorn

__all__ = ["ROOT", "Process", "start_web", "start_worker"]


class Process(processes.Process):
    """``bench.processes.Process`` with ``env`` laid over this process's environment, and recorded."""

    started: ClassVar[list[Process]] = []  # every one, so the session can stop any a test left behind

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> None:
        super().__init__(name, argv, {**os.environ, **env}, log_dir, cwd)
        Process.started.append(self)


def start_web(env: dict[str, str], log_dir: Path, workers: int = 2) -> tuple[Process, str]:
    return start_gunicorn("app:create_app()", env, log_dir, "web", workers, timeout=30, cls=Process)


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker", concurrency: int = 2) -> Process:
    return start_celery_worker(env, log_dir, name, concurrency=concurrency, timeout=40, cls=Process,
                               options=("--without-gossip", "--without-mingle"))
