"""Real processes for benchmarks and soaks: gunicorn servers and Celery workers, each in its own group.

Reusable outside ``bench``: ``Process`` stops the whole process group (gunicorn's and Celery's
children included), and the ``start_*`` helpers return only once the process serves.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chathooks.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[1]


class ProcessError(RuntimeError):
    """A process died or did not become ready; the message carries its log's tail."""


class Process:
    """A child process in a session of its own, with its output in ``log_dir/<name>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group (warm shutdown), SIGKILL it if it lingers."""
        if self._log.closed:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Poll ``check`` while the process lives; ProcessError with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while not check():
            if not self.alive():
                raise ProcessError(f"{self.name} exited with {self.proc.returncode} before {what}:\n{self._tail()}")
            if time.monotonic() > deadline:
                raise ProcessError(f"{self.name}: no {what} within {timeout:.0f}s:\n{self._tail()}")
            time.sleep(0.05)

    def _signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _tail(self, lines: int = 20) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def start_gunicorn(app: str, env: dict[str, str], log_dir: Path, name: str, workers: int = 2) -> tuple[Process, str]:
    """gunicorn serving ``app`` (e.g. ``app:create_app()``) on a free loopback port, with the repo's
    gunicorn.conf.py and sync workers; returns once ``GET /healthz`` answers 200."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync", app]
    web = Process(name, argv, env, log_dir)
    try:
        web.wait_until(lambda: _healthy(port), "answer on /healthz")
    except BaseException:
        web.stop()
        raise
    return web, f"http://127.0.0.1:{port}"


def start_celery_worker(env: dict[str, str], log_dir: Path, name: str, app: str = "workers",
                        concurrency: int = 2) -> Process:
    """``celery -A <app> worker`` with the Procfile's flags; returns once it logs that it is ready."""
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel=INFO", "-E",
            f"--concurrency={concurrency}", f"--hostname={name}@%h"]
    worker = Process(name, argv, env, log_dir)
    try:
        worker.wait_until(lambda: " ready." in worker.log(), "ready line")
    except BaseException:
        worker.stop()
        raise
    return worker


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
