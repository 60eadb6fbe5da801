"""B3T's two sides in instructions: what a delivery's handlers cost, counted rather than timed.

The VM's speed moves from minute to minute (B3T's pairs range over ±0.2), but the instructions a
delivery costs do not: the workers' code (``handle_delivery``, as a pool process runs it) and a
private Redis each run under valgrind's callgrind, counted only while the conversations are
delivered, with the default rules minus the nudge and with ``bench/rules.py``'s 20 triggers.
Celery's own consumer, the ingress and the kernel are not counted: this is the handlers' share.

    python -m bench.icount [--chats N]      # needs valgrind (Debian's package)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.checks import wait_until
from bench.redis_target import SECRET
from bench.rules import write_rules
from chathooks.embedded_redis import free_port, port_open, redis_server_executable

SIDES = ("no-triggers", "triggers")
_COLLECTED = re.compile(r"Collected : (\d+)")


@dataclass(frozen=True)
class Count:
    side: str
    deliveries: int
    client: int  # instructions, the workers' code
    redis: int  # instructions, Redis

    @property
    def per_delivery(self) -> tuple[float, float]:
        return self.client / self.deliveries, self.redis / self.deliveries


def _callgrind(log: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--log-file={log}",
            f"--callgrind-out-file={log.with_suffix('.out')}"]


def _collected(log: Path) -> int:
    found = _COLLECTED.findall(log.read_text())
    if not found:
        raise RuntimeError(f"no instruction count in {log}")
    return int(found[-1])


def count(side: str, chats: int, work: Path) -> Count:
    """One side: a private Redis and the workers' code, both counted while ``chats`` conversations are handled."""
    port = free_port()
    redis_log, client_log = work / f"{side}-redis.log", work / f"{side}-client.log"
    server = subprocess.Popen([*_callgrind(redis_log), str(redis_server_executable()), "--port", str(port),
                               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), "redis-server under callgrind to listen", 60)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        child = subprocess.run([*_callgrind(client_log), sys.executable, "-m", "bench.icount", "--child", side,
                                "--chats", str(chats), "--port", str(port), "--redis-pid", str(server.pid),
                                "--rules", str(write_rules(work)[side])],
                               env=env, capture_output=True, text=True, timeout=1800)
        if child.returncode != 0:
            raise RuntimeError(f"{side}: {child.stderr[-2000:]}")
        deliveries = int(json.loads(child.stdout.strip().splitlines()[-1])["deliveries"])
    finally:
        server.terminate()
        server.wait(60)
    return Count(side, deliveries, _collected(client_log), _collected(redis_log))


def _child(side: str, chats: int, port: int, redis_pid: int, rules: str) -> None:
    """Runs under callgrind: warm up, then deliver the conversations with both processes counted."""
    import logging

    from bench.bodies import conversations
    from chathooks.platforms.livechat import adapter as livechat
    from chathooks.settings import Settings
    from workers.dispatch import handle_delivery
    from workers.runtime import Runtime

    logging.disable(logging.WARNING)
    settings = Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{port}/0", "CHATHOOKS_KEY_PREFIX": "icount:",
                                  "LIVECHAT_WEBHOOK_SECRETS": SECRET, "CHATHOOKS_DRY_RUN": "1",
                                  "CHATHOOKS_RULES": rules})
    rt = Runtime.build(settings)

    def messages(n: int) -> list[dict]:  # type: ignore[type-arg]
        bodies = conversations(uuid.uuid4().hex[:8], n, 8).all
        deliveries = (livechat.to_delivery(livechat.load_envelope(json.loads(b)), settings) for b in bodies)
        return [d.to_message() for d in deliveries if d is not None]

    for message in messages(2):  # scripts loaded, connections open
        handle_delivery(message, rt)
    timed = messages(chats)

    def instrument(on: bool) -> None:
        # This process last on, first off: the other's callgrind_control run is not counted as its work.
        for pid in (redis_pid, os.getpid()) if on else (os.getpid(), redis_pid):
            subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)], check=True,
                           capture_output=True)

    instrument(True)
    for message in timed:
        handle_delivery(message, rt)
    instrument(False)
    print(json.dumps({"deliveries": len(timed)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.icount", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=10, help="conversations per side (10 deliveries each)")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rules", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.chats, args.port, args.redis_pid, args.rules)
        return 0
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("bench.icount needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="chathooks-icount-"))
    try:
        counts = [count(side, args.chats, work) for side in SIDES]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for c in counts:
        client, redis = c.per_delivery
        print(f"{c.side:12s} {c.deliveries} deliveries: {client:,.0f} instructions a delivery in the workers' code, "
              f"{redis:,.0f} in Redis, {client + redis:,.0f} in all")
    none, with_ = (sum(c.per_delivery) for c in counts)
    print(f"20 triggers cost {with_ / none:.2f}x the instructions of none (the handlers' share of B3T's work)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
