"""B3 (pipeline against a no-op task), B3T (with 20 triggers against none) and B4 (two worker processes
against one).

Pipeline: whole conversations are posted to the real ingress while a real Celery worker runs
the automations (dry-run: no outbound calls); the rate is deliveries from the first request
to the moment the workers' ``processed`` counter says the last handler is done.
No-op: the same worker command and configuration draining as many no-op task messages,
pushed onto the queue at once; done when the queue and the broker's unacked set are empty.
Triggers: the pipeline with the default rules minus the nudge (no trigger at all), and with
20 triggers added (bench/rules.py). Each run starts a fresh worker, warms it up, measures,
and stops it; the sides alternate order between rounds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.bodies import conversations
from bench.checks import BenchError, check_errors, wait_until
from bench.ingress import APPS
from bench.noop import NOOP
from bench.plan import Plan
from bench.processes import start_celery_worker, start_gunicorn
from bench.pyload import PythonLoad
from bench.redis_target import Namespace, RedisTarget
from bench.rules import write_rules
from bench.stats import Figure, Spread, ratios
from chathooks.queue_message import celery_message

PROCESSED = "processed:livechat"
UNACKED = "unacked"  # kombu's Redis transport keeps delivered, unacknowledged messages here
SIDES = ("pipeline", "noop", "pipeline-1", "no-triggers", "triggers")


@dataclass(frozen=True)
class Run:
    side: str
    concurrency: int
    deliveries: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds

    def to_dict(self) -> dict[str, object]:
        return {"side": self.side, "concurrency": self.concurrency, "deliveries": self.deliveries,
                "seconds": round(self.seconds, 3), "per_second": round(self.rate, 1)}


def measure(target: RedisTarget, plan: Plan, log_dir: Path) -> tuple[Figure, Figure, Figure]:
    ns = target.namespace("pipeline")
    client = target.client()
    rules = write_rules(log_dir)
    web, url = start_gunicorn(APPS["ingress"], ns.env(), log_dir, "pipeline-web", plan.web_workers)
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    try:
        for n in range(plan.rounds):
            for side in (SIDES if n % 2 == 0 else SIDES[::-1]):
                concurrency = 1 if side == "pipeline-1" else plan.worker_concurrency
                measure_side = _noop(plan) if side == "noop" else _pipeline(url, plan)
                env = {"CHATHOOKS_RULES": str(rules[side])} if side in rules else {}
                runs[side].append(_with_worker(side, concurrency, ns, client, log_dir, n, measure_side, env))
    finally:
        web.stop()
        ns.clean(client)
    return _b3(runs, plan), _b3t(runs), _b4(runs, plan)


# (namespace, client, warm-up?) -> (deliveries, seconds); a warm-up is small: each pool process runs a task.
Measure = Callable[[Namespace, redis.Redis, bool], tuple[int, float]]


def _with_worker(side: str, concurrency: int, ns: Namespace, client: redis.Redis, log_dir: Path, n: int,
                 measure_side: Measure, env: dict[str, str]) -> Run:
    app = "bench.noop" if side == "noop" else "workers"
    worker = start_celery_worker(ns.env(**env), log_dir, f"{side}-{n}", app=app, concurrency=concurrency)
    try:
        measure_side(ns, client, True)
        deliveries, seconds = measure_side(ns, client, False)
    finally:
        worker.stop()
        ns.clean(client)
    return Run(side, concurrency, deliveries, seconds)


def _pipeline(url: str, plan: Plan) -> Measure:
    def run(ns: Namespace, client: redis.Redis, warmup: bool) -> tuple[int, float]:
        chats = 2 * plan.worker_concurrency if warmup else plan.pipeline_chats
        bodies = conversations(uuid.uuid4().hex[:8], chats, plan.messages_per_chat).all
        return len(bodies), post_and_wait(url, bodies, plan.connections, client, ns)

    return run


def _noop(plan: Plan) -> Measure:
    """As many no-op tasks as a pipeline run has deliveries."""

    def run(ns: Namespace, client: redis.Redis, warmup: bool) -> tuple[int, float]:
        count = 4 * plan.worker_concurrency if warmup else plan.pipeline_chats * (plan.messages_per_chat + 2)
        messages = [celery_message(NOOP, [], ns.queue) for _ in range(count)]
        started = time.time()
        with client.pipeline(transaction=False) as pipe:
            for i in range(0, count, 500):
                pipe.lpush(ns.queue, *messages[i:i + 500])
            pipe.execute()

        def drained() -> bool:
            with client.pipeline(transaction=False) as pipe:
                pipe.llen(ns.queue)
                pipe.hlen(UNACKED)
                return not any(pipe.execute())

        return count, wait_until(drained, f"the workers to drain {count} no-op tasks", _patience(count)) - started

    return run


def post_and_wait(url: str, bodies: list[str], connections: int, client: redis.Redis, ns: Namespace) -> float:
    """Post every body to the ingress and wait until the workers have processed them all;
    returns the seconds from the first request to the last handler done."""
    done = _processed(client, ns) + len(bodies)
    result = PythonLoad().replay(url, bodies, connections)
    check_errors("pipeline", result)
    if result.requests != len(bodies):
        raise BenchError(f"pipeline: {result.requests} of {len(bodies)} deliveries answered")
    finished = wait_until(lambda: _processed(client, ns) >= done, f"the workers to process {len(bodies)} deliveries",
                          _patience(len(bodies)))
    assert result.started is not None  # the Python generator always knows
    return finished - result.started


def _processed(client: redis.Redis, ns: Namespace) -> int:
    return int(client.hget(ns.keys.metrics, PROCESSED) or 0)


def _patience(items: int) -> float:
    return 60 + items / 20


def _b3(runs: dict[str, list[Run]], plan: Plan) -> Figure:
    pipeline, noop = [r.rate for r in runs["pipeline"]], [r.rate for r in runs["noop"]]
    return Figure(
        key="B3", title="pipeline deliveries/s ÷ Celery no-op drain rate", unit="ratio",
        value=ratios(pipeline, noop),
        sides={"pipeline /s": Spread.of(pipeline), "no-op /s": Spread.of(noop)},
        details={"worker_concurrency": plan.worker_concurrency, "chats": plan.pipeline_chats,
                 "messages_per_chat": plan.messages_per_chat,
                 "runs": [r.to_dict() for side in ("pipeline", "noop") for r in runs[side]]},
    )


def _b3t(runs: dict[str, list[Run]]) -> Figure:
    with_, without = [r.rate for r in runs["triggers"]], [r.rate for r in runs["no-triggers"]]
    return Figure(
        key="B3T", title="pipeline deliveries/s with 20 triggers ÷ with none", unit="ratio",
        value=ratios(with_, without),
        sides={"20 triggers /s": Spread.of(with_), "no triggers /s": Spread.of(without)},
        details={"rules": "default rules without the nudge; and with bench/rules.py's 20 triggers",
                 "runs": [r.to_dict() for side in ("triggers", "no-triggers") for r in runs[side]]},
    )


def _b4(runs: dict[str, list[Run]], plan: Plan) -> Figure:
    two, one = [r.rate for r in runs["pipeline"]], [r.rate for r in runs["pipeline-1"]]
    return Figure(
        key="B4", title=f"pipeline with {plan.worker_concurrency} worker processes ÷ with 1", unit="ratio",
        value=ratios(two, one),
        sides={f"{plan.worker_concurrency} processes /s": Spread.of(two), "1 process /s": Spread.of(one)},
        details={"runs": [r.to_dict() for r in runs["pipeline-1"]]},
    )
