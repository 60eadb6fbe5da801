"""`chathooks run`: run every Procfile process locally, honcho-style, with an embedded Redis if needed."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chathooks.embedded_redis import EmbeddedRedis, EmbeddedRedisError, port_open

DEFAULT_REDIS_PORT = 6390  # not 6379: leave a system Redis alone
DEV_SECRET_FILE = "dev-webhook-secret"
STOP_TIMEOUT_SECONDS = 10.0
_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*(.+)$")
_COLOURS = ("36", "33", "32", "35", "34", "31")


class ProcfileError(ValueError):
    """The Procfile is missing or malformed."""


def parse_procfile(text: str) -> dict[str, str]:
    """Parse ``name: command`` lines in order, ignoring blank lines and ``#`` comments."""
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if match is None:
            raise ProcfileError(f"Procfile line {number} is not 'name: command': {raw!r}")
        name, command = match.groups()
        if name in processes:
            raise ProcfileError(f"Procfile line {number}: process type {name!r} is defined twice")
        processes[name] = command.strip()
    if not processes:
        raise ProcfileError("Procfile defines no process types")
    return processes


def ensure_dev_secret(path: Path) -> str:
    """Return the local-development webhook secret stored at ``path``, creating it (mode 0600) once."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret


def child_environment(environ: Mapping[str, str], var_dir: Path) -> dict[str, str]:
    """The environment for local children: loopback-only listeners, default ports, venv tools on PATH."""
    env = dict(environ)
    env["HOST"] = "127.0.0.1"
    env["FLOWER_ADDRESS"] = "127.0.0.1"
    env.setdefault("PORT", "8000")
    env.setdefault("FLOWER_PORT", "5555")
    env.setdefault("BEAT_SCHEDULE", str(var_dir.resolve() / "beat-schedule"))
    env["PYTHONUNBUFFERED"] = "1"  # otherwise children's lines arrive in bursts through the pipe
    # `make run` calls .venv/bin/chathooks without activating the venv; gunicorn/celery live beside it.
    bin_dir = os.path.dirname(sys.executable)
    path = env.get("PATH", os.defpath)
    if bin_dir not in path.split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + path
    return env


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    reader: threading.Thread = field(init=False)


class _Output:
    """Writes children's lines as ``HH:MM:SS name | line``, one whole line at a time."""

    def __init__(self, names: list[str], stream: IO[str]) -> None:
        self._width = max(len(name) for name in names)
        self._stream = stream
        self._colour = stream.isatty()
        self._colours = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {name.ljust(self._width)} |"
        if self._colour:
            prefix = f"\033[{self._colours.get(name, '0')}m{prefix}\033[0m"
        with self._lock:
            self._stream.write(f"{prefix} {text}\n")
            self._stream.flush()

    def lines(self, name: str, texts: list[str]) -> None:
        for text in texts:
            self.line(name, text)

    def pump(self, name: str, pipe: IO[bytes]) -> None:
        for raw in iter(pipe.readline, b""):
            self.line(name, raw.decode(errors="replace").rstrip("\r\n"))
        pipe.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Starts each process in its own process group and stops them all together."""

    def __init__(
        self,
        processes: Mapping[str, str],
        env: Mapping[str, str],
        *,
        stream: IO[str] | None = None,
        stop_requested: threading.Event | None = None,
    ) -> None:
        self.processes = dict(processes)
        self.env = dict(env)
        self.output = _Output([*self.processes, "system"], stream or sys.stdout)
        self.children: list[_Child] = []
        self.stop_requested = stop_requested or threading.Event()

    def start(self) -> None:
        for name, command in self.processes.items():
            process = subprocess.Popen(
                ["sh", "-c", command],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.output.line("system", f"{name} started (pid {process.pid}): {command}")
            child = _Child(name, process)
            assert process.stdout is not None
            child.reader = threading.Thread(target=self.output.pump, args=(name, process.stdout), daemon=True)
            child.reader.start()
            self.children.append(child)

    def wait(self, on_ready: tuple[int, list[str]] | None = None) -> _Child | None:
        """Block until a stop is requested (returns None) or a child exits (returns it).

        ``on_ready`` is ``(port, lines)``: the lines are shown once that loopback port accepts connections.
        """
        # Not stop_requested.wait(): the signal handler sets the event, and Event.set() from a
        # handler that interrupts Event.wait() in the same thread deadlocks on its lock.
        while not self.stop_requested.is_set():
            time.sleep(0.2)
            for child in self.children:
                if child.process.poll() is not None:
                    return child
            if on_ready is not None and port_open(on_ready[0]):
                self.output.lines("system", on_ready[1])
                on_ready = None
        return None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> list[str]:
        """SIGTERM every process group, wait up to ``timeout``, SIGKILL stragglers; return their names."""
        for child in self.children:
            _signal_group(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        pending = list(self.children)
        while pending and time.monotonic() < deadline:
            for child in pending:
                child.process.poll()  # reap the leader so an empty group reads as gone
            pending = [child for child in pending if _group_alive(child.process.pid)]
            if pending:
                time.sleep(0.1)
        for child in pending:
            _signal_group(child.process.pid, signal.SIGKILL)
        for child in self.children:
            child.process.wait()
            child.reader.join(timeout=2)
        return [child.name for child in pending]


def _urls(env: Mapping[str, str], processes: Mapping[str, str], redis_url: str) -> list[str]:
    base = f"http://127.0.0.1:{env['PORT']}"
    lines = ["chathooks is up:"]
    if "web" in processes:
        lines += [
            f"  ingress   {base}/webhooks/livechat",
            f"  health    {base}/healthz  (ready: {base}/readyz)",
            f"  metrics   {base}/metrics",
        ]
    if "flower" in processes:
        lines.append(f"  flower    http://127.0.0.1:{env['FLOWER_PORT']}")
    lines += [f"  redis     {redis_url}", "Press Ctrl-C to stop."]
    return lines


def run(
    environ: Mapping[str, str] | None = None, *, procfile: Path = Path("Procfile"), var_dir: Path = Path("var")
) -> int:
    """Run the Procfile's processes (and an embedded Redis unless REDIS_URL is set) until Ctrl-C/SIGTERM.

    Returns 0 after a requested stop, non-zero when startup fails or a process dies on its own.
    """
    env = dict(os.environ if environ is None else environ)
    try:
        processes = parse_procfile(procfile.read_text())
    except (OSError, ProcfileError) as exc:
        print(f"chathooks run: cannot use {procfile}: {exc}", file=sys.stderr)
        return 2
    # Installed first so that a Ctrl-C during startup still stops whatever was already started.
    stop_requested = threading.Event()
    previous = _install_stop_handlers(stop_requested)
    try:
        return _run(processes, env, var_dir, stop_requested)
    finally:
        _restore_handlers(previous)


def _run(processes: dict[str, str], env: dict[str, str], var_dir: Path, stop_requested: threading.Event) -> int:
    if not env.get("LIVECHAT_WEBHOOK_SECRETS", "").strip():
        secret_path = var_dir / DEV_SECRET_FILE
        env["LIVECHAT_WEBHOOK_SECRETS"] = ensure_dev_secret(secret_path)
        print(f"chathooks run: LIVECHAT_WEBHOOK_SECRETS unset; using the dev secret stored in {secret_path}")

    embedded: EmbeddedRedis | None = None
    if not env.get("REDIS_URL", "").strip():
        try:
            port = int(env.get("CHATHOOKS_REDIS_PORT") or DEFAULT_REDIS_PORT)
        except ValueError:
            print("chathooks run: CHATHOOKS_REDIS_PORT must be a port number", file=sys.stderr)
            return 2
        embedded = EmbeddedRedis(var_dir / "redis", port=port)
        try:
            embedded.start()
        except EmbeddedRedisError as exc:
            print(f"chathooks run: cannot start the embedded Redis: {exc}", file=sys.stderr)
            return 1
        env["REDIS_URL"] = embedded.url
        print(f"chathooks run: embedded Redis at {embedded.url}, data and AOF in {embedded.data_dir}")

    env = child_environment(env, var_dir)
    supervisor = Supervisor(processes, env, stop_requested=stop_requested)
    died: _Child | None = None
    try:
        supervisor.start()
        announcement = _urls(env, processes, env["REDIS_URL"])
        if "web" in processes:
            died = supervisor.wait(on_ready=(int(env["PORT"]), announcement))
        else:
            supervisor.output.lines("system", announcement)
            died = supervisor.wait()
        if died is not None:
            supervisor.output.line(
                "system", f"{died.name} exited unexpectedly (code {died.process.returncode}); stopping the others"
            )
        else:
            supervisor.output.line("system", "stopping…")
    finally:
        stragglers = supervisor.stop()
        if stragglers:
            supervisor.output.line("system", f"killed after {STOP_TIMEOUT_SECONDS:.0f}s: {', '.join(stragglers)}")
        if embedded is not None:
            embedded.stop()
    if died is not None:
        print(f"chathooks run: process {died.name!r} died (exit code {died.process.returncode})", file=sys.stderr)
        return 1
    print("chathooks run: stopped")
    return 0


def _install_stop_handlers(event: threading.Event) -> dict[signal.Signals, Any]:
    # Signal handlers can only be installed from the main thread; elsewhere the caller stops us.
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, lambda signum, frame: event.set()) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_handlers(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
