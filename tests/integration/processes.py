"""Real processes for end-to-end tests: gunicorn serving the ingress and Celery workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from chathooks.embedded_redis import free_port
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A child process in its own process group, with its output in a log file."""

    started: list[Process] = []  # every one, so the session can stop any a test left behind

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        Process.started.append(self)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self._log.closed:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()


def start_web(env: dict[str, str], log_dir: Path, workers: int = 2) -> tuple[Process, str]:
    port = free_port()
    web = Process("web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                          "app:create_app()"], env, log_dir)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert web.alive(), web.log()
        try:
            return requests.get(f"{url}/healthz", timeout=1).ok
        except requests.RequestException:  # not listening yet, or slow to boot under load
            return False

    wait_for(up, timeout=30, what="gunicorn to answer /healthz")
    return web, url


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker", concurrency: int = 2) -> Process:
    worker = Process(name, [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO", "-E",
                            f"--concurrency={concurrency}", f"--hostname={name}@%h", "--without-gossip",
                            "--without-mingle"], env, log_dir)

    def ready() -> bool:
        assert worker.alive(), worker.log()
        return " ready." in worker.log()

    wait_for(ready, timeout=40, what=f"celery {name} to be ready")
    return worker
