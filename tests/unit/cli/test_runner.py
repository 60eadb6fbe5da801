import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from cli.runner import (
    ProcfileError,
    Supervisor,
    child_environment,
    ensure_dev_secret,
    parse_procfile,
)

ROOT = Path(__file__).resolve().parents[3]
DRIVER = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "from cli.runner import run\n"
    "sys.exit(run(json.loads(sys.argv[1]), procfile=Path(sys.argv[2]), var_dir=Path(sys.argv[3])))\n"
)


# --- Procfile -------------------------------------------------------------------------------


def test_real_procfile_has_exactly_the_four_process_types():
    processes = parse_procfile((ROOT / "Procfile").read_text())
    assert list(processes) == ["web", "worker", "beat", "flower"]
    assert processes["web"] == (
        'gunicorn --bind ${HOST:-0.0.0.0}:${PORT:-8000} --workers ${WEB_CONCURRENCY:-2} '
        '--access-logfile - "app:create_app()"'
    )
    assert processes["worker"].startswith("celery -A workers worker ")
    assert processes["beat"].startswith("celery -A workers beat ")
    assert processes["flower"] == "chathooks flower"


def test_parse_ignores_comments_and_blank_lines_and_keeps_colons_in_commands():
    text = "# local processes\n\nweb: echo a:b  \n  # indented comment\nworker:sleep 1\n"
    assert parse_procfile(text) == {"web": "echo a:b", "worker": "sleep 1"}


@pytest.mark.parametrize("text", ["", "# only a comment\n", "web echo\n", "web: a\nweb: b\n", ": nameless\n"])
def test_parse_rejects_malformed_procfiles(text):
    with pytest.raises(ProcfileError):
        parse_procfile(text)


# --- environment and secret ----------------------------------------------------------------


def test_dev_secret_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "var" / "dev-webhook-secret"
    secret = ensure_dev_secret(path)
    assert len(secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_dev_secret(path) == secret


def test_child_environment_listens_on_loopback_with_default_ports(tmp_path):
    env = child_environment({"HOST": "0.0.0.0", "FLOWER_ADDRESS": "0.0.0.0", "PATH": "/bin"}, tmp_path)
    assert env["HOST"] == "127.0.0.1"
    assert env["FLOWER_ADDRESS"] == "127.0.0.1"
    assert env["PORT"] == "8000"
    assert env["FLOWER_PORT"] == "5555"
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert child_environment({"PORT": "9000", "FLOWER_PORT": "9555"}, tmp_path)["PORT"] == "9000"


# --- supervision (in process) ---------------------------------------------------------------


def test_supervisor_prefixes_output_and_kills_stragglers():
    out = io.StringIO()
    supervisor = Supervisor(
        {"talker": "echo hello; exec sleep 60", "stubborn": "trap '' TERM; echo ready; sleep 60"},
        {"PATH": os.environ["PATH"]},
        stream=out,
    )
    supervisor.start()
    try:
        _until(lambda: "stubborn | ready" in out.getvalue() and "talker   | hello" in out.getvalue())
    finally:
        stragglers = supervisor.stop(timeout=0.5)
    assert stragglers == ["stubborn"]
    assert all(child.process.poll() is not None for child in supervisor.children)
    lines = out.getvalue().splitlines()
    assert any(line.endswith("talker   | hello") for line in lines)
    assert any(line.endswith("stubborn | ready") for line in lines)


# --- run() in a subprocess ------------------------------------------------------------------


class Runner:
    """`run()` in a child Python process, its output collected line by line."""

    def __init__(self, tmp_path: Path, procfile: str, env: dict[str, str]):
        (tmp_path / "Procfile").write_text(procfile)
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(env), str(tmp_path / "Procfile"), str(tmp_path / "var")],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20) -> None:
        _until(lambda: text in self.output, timeout, lambda: f"{text!r} not in output:\n{self.output}")

    def finish(self, timeout: float = 20) -> int:
        code = self.process.wait(timeout)
        self.reader.join(timeout)
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def runner(tmp_path):
    started: list[Runner] = []

    def start(procfile: str, **env: str) -> Runner:
        started.append(Runner(tmp_path, procfile, {"PATH": os.environ["PATH"], **env}))
        return started[-1]

    yield start
    for r in started:
        r.kill()


def _until(condition, timeout: float = 20, message=lambda: "timed out") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


PIDS_PROCFILE = (
    "# two long-running processes that report their pid\n"
    "one: echo pid=$$; exec sleep 60\n"
    "two: python -c \"import os, time; print('pid=%d' % os.getpid(), flush=True); time.sleep(60)\"\n"
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_everything_cleanly_on_signal(runner, sig):
    r = runner(PIDS_PROCFILE, REDIS_URL="redis://127.0.0.1:1/0", LIVECHAT_WEBHOOK_SECRETS="s3cret")
    _until(lambda: r.output.count("| pid=") == 2, message=lambda: r.output)
    pids = [int(line.rsplit("pid=", 1)[1]) for line in r.lines if "| pid=" in line]
    r.process.send_signal(sig)
    assert r.finish() == 0, r.output
    assert "chathooks run: stopped" in r.output
    assert not any(_alive(pid) for pid in pids)


def test_run_returns_non_zero_naming_the_child_that_died(runner):
    r = runner(
        "steady: echo pid=$$; exec sleep 60\nflaky: sleep 0.5; exit 3\n",
        REDIS_URL="redis://127.0.0.1:1/0",
        LIVECHAT_WEBHOOK_SECRETS="s3cret",
    )
    code = r.finish()
    assert code != 0
    assert "process 'flaky' died (exit code 3)" in r.output
    steady = int(next(line for line in r.lines if "| pid=" in line).rsplit("pid=", 1)[1])
    assert not _alive(steady)


def test_missing_procfile_is_an_error(tmp_path):
    from cli.runner import run

    assert run({"REDIS_URL": "redis://x:1/0"}, procfile=tmp_path / "nope", var_dir=tmp_path / "var") == 2


ENV_PROBE = (
    "probe: python -c \"import os, time; e = os.environ; "
    "print('env', e['REDIS_URL'], e['HOST'], e['FLOWER_ADDRESS'], e['PORT'], e['FLOWER_PORT'], "
    "e['LIVECHAT_WEBHOOK_SECRETS'] == open('var/dev-webhook-secret').read().strip(), flush=True); "
    "time.sleep(60)\"\n"
)


def test_run_starts_embedded_redis_and_dev_secret_when_unset(runner, tmp_path):
    port = _free_port()
    r = runner(ENV_PROBE, CHATHOOKS_REDIS_PORT=str(port))
    r.wait_for("| env ")
    assert f"| env redis://127.0.0.1:{port}/0 127.0.0.1 127.0.0.1 8000 5555 True" in r.output
    secret = (tmp_path / "var" / "dev-webhook-secret").read_text().strip()
    assert secret not in r.output
    assert "dev-webhook-secret" in r.output
    assert redis.Redis(port=port).ping()
    r.process.send_signal(signal.SIGTERM)
    assert r.finish() == 0, r.output
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=1).ping()
    assert (tmp_path / "var" / "redis" / "appendonly.aof").exists()


def test_queued_data_survives_a_stopped_and_restarted_run(runner):
    port = _free_port()
    probe = (
        "q: python -c \"import os, redis, time; r = redis.Redis.from_url(os.environ['REDIS_URL']); "
        "{}; time.sleep(60)\"\n"
    )
    push = probe.format("r.rpush('q', 'job'); print('pushed', flush=True)")
    read = probe.format("print('queued', r.lrange('q', 0, -1), flush=True)")
    first = runner(push, CHATHOOKS_REDIS_PORT=str(port))
    first.wait_for("| pushed")
    first.process.send_signal(signal.SIGINT)
    assert first.finish() == 0, first.output
    second = runner(read, CHATHOOKS_REDIS_PORT=str(port))
    second.wait_for("| queued")
    assert "| queued [b'job']" in second.output
    second.process.send_signal(signal.SIGTERM)
    assert second.finish() == 0, second.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
