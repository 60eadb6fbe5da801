"""`chathooks flower`: Flower for the Celery app, refusing to listen beyond localhost without basic auth."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path

DEFAULT_PORT = "5555"
DEFAULT_ADDRESS = "0.0.0.0"
# Flower keeps every task in memory (about 1.5 KB each) up to max_tasks. The tick sends no events, so the
# history is deliveries and jobs: 200,000 is a day at a little over two deliveries a second, in about 300 MB.
DEFAULT_MAX_TASKS = "200000"
DEFAULT_DB = "/tmp/chathooks-flower.db"  # its history survives a restart (--persistent), saved every minute
# The task list shows each task's arguments as the ingress names them: source, action, chat.
TASKS_COLUMNS = "name,args,state,received,runtime,worker,uuid"


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    host = address.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_basic_auth(value: str | None) -> bool:
    """``user:password`` pairs, comma-separated as Flower takes them, each with both halves."""
    pairs = [p.strip() for p in (value or "").split(",")]
    return bool(value) and all(user and password for user, _, password in (p.partition(":") for p in pairs))


def flower_command(environ: Mapping[str, str]) -> list[str]:
    """The ``celery ... flower`` argv for FLOWER_PORT, FLOWER_ADDRESS, FLOWER_MAX_TASKS and FLOWER_DB.

    FLOWER_BASIC_AUTH stays in the environment, where Flower reads it itself, so the password
    never appears in the process list.
    """
    port = environ.get("FLOWER_PORT") or DEFAULT_PORT
    address = environ.get("FLOWER_ADDRESS") or DEFAULT_ADDRESS
    max_tasks = environ.get("FLOWER_MAX_TASKS") or DEFAULT_MAX_TASKS
    db = environ.get("FLOWER_DB") or DEFAULT_DB
    return ["celery", "-A", "workers", "flower", f"--max_tasks={max_tasks}", "--persistent=True", f"--db={db}",
            "--state_save_interval=60000", f"--tasks_columns={TASKS_COLUMNS}", f"--port={port}", f"--address={address}"]


def _executable(name: str) -> str:
    # The venv's scripts sit beside its interpreter even when the venv is not activated.
    sibling = Path(sys.executable).with_name(name)
    return str(sibling) if sibling.is_file() else name


def main(environ: Mapping[str, str] | None = None) -> int:
    """Exec Flower; return 2 (without starting it) when it would be reachable beyond localhost unauthenticated."""
    env = os.environ if environ is None else environ
    address = env.get("FLOWER_ADDRESS") or DEFAULT_ADDRESS
    if not has_basic_auth(env.get("FLOWER_BASIC_AUTH")) and not is_loopback(address):
        print(
            f"chathooks flower: refusing to listen on {address} without authentication; "
            "set FLOWER_BASIC_AUTH=user:password or FLOWER_ADDRESS=127.0.0.1",
            file=sys.stderr,
        )
        return 2
    command = flower_command(env)
    try:
        os.execvpe(_executable(command[0]), command, dict(env))
    except OSError as exc:
        print(f"chathooks flower: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 1
