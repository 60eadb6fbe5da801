"""Deployment files: the image runs as non-root, the Procfile is SPEC §2's, compose keeps Redis durable
and Flower private (or authenticated)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.flower import DEFAULT_PORT, is_loopback

ROOT = Path(__file__).resolve().parents[2]
PROCESS_TYPES = ["web", "worker", "beat", "flower"]


# --- Dockerfile ----------------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final build stage, continuation lines joined."""
    logical = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    parsed = [(line.split(None, 1) + [""])[:2] for line in logical.splitlines() if line.strip()]
    steps = [(word.upper(), args.strip()) for word, args in parsed]
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def run_as(steps: list[tuple[str, str]]) -> str:
    """The USER in force when the container's command starts."""
    start = next(i for i, (word, _) in enumerate(steps) if word in ("CMD", "ENTRYPOINT"))
    users = [args for word, args in steps[:start] if word == "USER"]
    assert users, "no USER before CMD/ENTRYPOINT: the container would run as root"
    assert not any(word == "USER" for word, _ in steps[start:]), "a USER after CMD/ENTRYPOINT"
    return users[-1]


def uid_of(user: str, steps: list[tuple[str, str]]) -> int:
    """The numeric uid of ``user`` (``name[:group]`` or ``uid[:gid]``), from the useradd that created it."""
    name = user.split(":")[0]
    if name.isdigit():
        return int(name)
    creates = re.compile(rf"(?:useradd|adduser)\b[^&;|]*--uid[ =](\d+)[^&;|]*\b{re.escape(name)}\b")
    for word, args in steps:
        if word == "RUN" and (found := creates.search(args)):
            return int(found[1])
    raise AssertionError(f"USER {user}: no useradd/adduser with --uid creates it")


def test_the_image_runs_as_a_non_root_user(dockerfile):
    user = run_as(dockerfile)
    assert user.split(":")[0] not in ("root", "0")
    assert uid_of(user, dockerfile) != 0


def test_the_image_user_is_numeric_so_orchestrators_can_verify_it(dockerfile):
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", run_as(dockerfile))


def test_uid_of_reads_numbers_and_useradd():
    steps = instructions("FROM x\nRUN groupadd -g 5 app \\\n && useradd --system --uid 10001 --gid app app\nUSER app\n"
                         "CMD [\"run\"]\n")
    assert uid_of("app", steps) == 10001
    assert uid_of("10002:10002", steps) == 10002
    with pytest.raises(AssertionError):
        uid_of("nobody-made-me", steps)


@pytest.mark.parametrize("text", [
    'FROM x\nCMD ["run"]\n',
    'FROM x\nUSER app\nFROM y\nCMD ["run"]\n',  # the final stage has no USER
    'FROM x\nCMD ["run"]\nUSER app\n',
])
def test_run_as_refuses_a_root_container(text):
    with pytest.raises(AssertionError):
        run_as(instructions(text))


# --- Procfile ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def procfile() -> dict[str, list[str]]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip() and not line.startswith("#")]
    names = [line.partition(":")[0].strip() for line in lines]
    assert names == PROCESS_TYPES, f"the Procfile's process types are SPEC §2's, each once: {names}"
    return {name: shlex.split(line.partition(":")[2]) for name, line in zip(names, lines)}


def test_procfile_web_serves_the_app_on_port(procfile):
    web = procfile["web"]
    assert web[0] == "gunicorn" and web[-1] == "app:create_app()"
    assert web[web.index("--bind") + 1].endswith(":${PORT:-8000}")


def test_procfile_worker_consumes_and_beat_schedules(procfile):
    assert procfile["worker"][:4] == ["celery", "-A", "workers", "worker"]
    assert procfile["beat"][:4] == ["celery", "-A", "workers", "beat"]


def test_procfile_flower_runs_the_guarded_launcher(procfile):
    # `chathooks flower` reads FLOWER_PORT (default 5555) and FLOWER_BASIC_AUTH, and refuses to
    # listen beyond loopback without the latter (tests/unit/chathooks/test_flower.py).
    assert procfile["flower"] == ["chathooks", "flower"]
    assert DEFAULT_PORT == "5555"


def test_procfile_commands_are_installed(procfile):
    scripts = Path(sys.executable).parent
    for name, argv in procfile.items():
        assert (scripts / argv[0]).is_file(), f"{name}: {argv[0]} is not installed with the package"


# --- docker-compose.yml --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def test_compose_redis_keeps_an_aof_and_never_evicts(services):
    cmd = command(services["redis"])
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert services["redis"].get("volumes"), "the AOF must outlive the container"


def host_ips(port: str | int | dict[str, Any]) -> str:
    """The host address a compose port mapping publishes on ("" for every interface)."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")) if "published" in port else "unpublished"
    parts = str(port).rsplit(":", 2)
    return parts[0].strip("[]") if len(parts) == 3 else ("" if len(parts) == 2 else "unpublished")


@pytest.mark.parametrize("port, host", [("5555:5555", ""), ("127.0.0.1:5555:5555", "127.0.0.1"),
                                        ("[::1]:5555:5555", "::1"), ("5555", "unpublished"),
                                        ({"target": 5555, "published": 5555}, ""),
                                        ({"target": 5555, "published": 5555, "host_ip": "127.0.0.1"}, "127.0.0.1")])
def test_host_ips(port, host):
    assert host_ips(port) == host


def test_compose_flower_is_not_public_without_basic_auth(services):
    flower = services["flower"]
    public = [p for p in flower.get("ports", []) if host_ips(p) != "unpublished" and not is_loopback(host_ips(p))]
    assert command(flower) == ["chathooks", "flower"], "Flower must start through the launcher that checks auth"
    if public:
        # ${VAR:?message}: compose refuses to start without it, rather than run Flower open.
        assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?[^}]*\}", str(flower["environment"]["FLOWER_BASIC_AUTH"]))


def test_compose_runs_every_process_type_from_the_image_as_its_user(services):
    for name in PROCESS_TYPES:
        assert name in services, name
        assert "user" not in services[name], f"{name} overrides the image's non-root USER"
    assert len({services[name].get("image") for name in PROCESS_TYPES}) == 1, "one image for every process type"
