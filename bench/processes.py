"""Real processes for benchmarks and soaks: gunicorn servers and Celery workers, each in its own group.

Reusable outside ``bench`` (the end-to-end tests build on it): ``Process`` stops the whole process
group (gunicorn's and Celery's children included), and the ``start_*`` helpers return only once the
process serves.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from chathooks.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[1]


class ProcessError(RuntimeError):
    """A process died or did not become ready; the message carries its log's tail."""


class Process:
    """A child process in a session of its own, with its output in ``log_dir/<name>.log``.

    ``env`` is the whole environment: nothing of the caller's is inherited.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group (warm shutdown), SIGKILL it if it lingers."""
        if self._log.closed:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
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

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole group, if the process still runs."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _tail(self, lines: int = 20) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


P = TypeVar("P", bound=Process)


def start_gunicorn(app: str, env: dict[str, str], log_dir: Path, name: str, workers: int = 2, *,
                   timeout: float = 60.0, cls: type[P] = Process) -> tuple[P, str]:  # type: ignore[assignment]
    """gunicorn serving ``app`` (e.g. ``app:create_app()``) on a free loopback port, with the repo's
    gunicorn.conf.py and sync workers; returns once ``GET /healthz`` answers 200.

    ``cls``: the ``Process`` class to start it as (a subclass may, say, record or adapt ``env``).
    """
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync", app]
    web = ready(cls(name, argv, env, log_dir), lambda: _healthy(port), "answer on /healthz", timeout)
    return web, f"http://127.0.0.1:{port}"


def start_celery_worker(env: dict[str, str], log_dir: Path, name: str, app: str = "workers",
                        concurrency: int = 2, *, options: Sequence[str] = (), timeout: float = 60.0,
                        cls: type[P] = Process, prefix: Sequence[str] = ()) -> P:  # type: ignore[assignment]
    """``celery -A <app> worker`` with the Procfile's flags and ``options`` (after ``prefix``, say a taskset);
    returns once it logs that it is ready."""
    argv = [*prefix, sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel=INFO",
            f"--concurrency={concurrency}", f"--hostname={name}@%h", *options]
    worker = cls(name, argv, env, log_dir)
    return ready(worker, lambda: " ready." in worker.log(), "ready line", timeout)


def ready(proc: P, check: Callable[[], bool], what: str, timeout: float = 60.0) -> P:
    """``proc`` once ``check`` passes (see ``Process.wait_until``); if it does not, ``proc`` is stopped."""
    try:
        proc.wait_until(check, what, timeout)
    except BaseException:
        proc.stop()
        raise
    return proc


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
