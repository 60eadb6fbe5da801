"""B3 (pipeline against a no-op task), B3T (with 20 triggers against none) and B4 (two worker processes
against one).

Pipeline: whole conversations are posted to the real ingress while a real Celery worker runs
the automations (dry-run: no outbound calls); the rate is deliveries from the first request
to the moment the workers' ``processed`` counter says the last handler is done.
No-op: the same worker command and configuration draining as many no-op task messages,
pushed onto the queue at once; done when the queue and the broker's unacked set are empty.
Triggers: the pipeline with the default rules minus the nudge (no trigger at all), and with
20 triggers added (bench/rules.py). Their ratio is one of two close figures on a noisy VM, so
each of these two sides keeps a web and a worker of its own running throughout, and many
shorter runs (``trigger_rounds`` of ``trigger_chats`` conversations) alternate between them:
each pair is measured seconds apart. When RabbitMQ is reachable, B3 and B4 again with it as the
broker: a second ingress and the workers on RabbitMQ, the no-op tasks published to it (without
confirms, as one burst) and drained when its queue has none ready (the last one or two a worker
holds are a millisecond's work). Each of the other runs starts a fresh worker, warms it up,
measures, and stops it; the sides alternate order between rounds.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from kombu import Connection

from bench import amqp_target, pinning
from bench.bodies import conversations
from bench.checks import BenchError, check_errors, wait_until
from bench.ingress import APPS
from bench.noop import NOOP
from bench.plan import Plan
from bench.processes import Process, start_celery_worker, start_gunicorn
from bench.pyload import PythonLoad
from bench.redis_target import Namespace, RedisTarget
from bench.rules import write_rules
from bench.stats import Figure, Spread, ratios
from chathooks.amqp import task_message
from chathooks.platforms.livechat import adapter as livechat
from chathooks.queue_message import celery_message, delivery_message
from chathooks.settings import Settings

PROCESSED = "processed:livechat"
UNACKED = "unacked"  # kombu's Redis transport keeps delivered, unacknowledged messages here
DRAIN = "drain"  # the pipeline's deliveries pushed straight onto the queue, as the no-op's are
CEILING = "ceiling"  # the pipeline's conversations through the ingress to workers that run no handler (bench.ceiling)
EVENTS = "pipeline events"  # CHATHOOKS_TASK_EVENTS=1: what task events cost when Flower is not running
TRIGGER_SIDES = ("no-triggers", "triggers")
SIDES = ("pipeline", "noop", DRAIN, CEILING, "pipeline-1", "pipeline-4", EVENTS)
PINNED_SIDES = ("pinned-1", "pinned-2", "pinned-4")  # B4 again, the workers on cores of their own
AMQP_SIDES = ("pipeline amqp", "noop amqp", "pipeline-1 amqp")


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


def measure(target: RedisTarget, plan: Plan, log_dir: Path) -> list[Figure]:
    ns = target.namespace("pipeline")
    client = target.client()
    rules = write_rules(log_dir)
    amqp = amqp_target.reachable()
    cores = pinning.split()
    sides = SIDES + (PINNED_SIDES if cores else ()) + (AMQP_SIDES if amqp else ())
    brokers = {side: ({"CELERY_BROKER_URL": amqp_target.AMQP_URL} if side in AMQP_SIDES else {}) for side in sides}
    web, url = start_gunicorn(APPS["ingress"], ns.env(), log_dir, "pipeline-web", plan.web_workers)
    webs = [web]
    urls = {side: url for side in SIDES + PINNED_SIDES}
    # Pinned runs: the web, an embedded Redis and the load generator on the first core, the workers on the rest.
    others = [web.proc.pid] + ([client.info("server")["process_id"]] if target.embedded else [])
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    try:
        if amqp:
            amqp_web, amqp_url = start_gunicorn(APPS["ingress"], ns.env(**brokers[AMQP_SIDES[0]]), log_dir,
                                                "pipeline-web-amqp", plan.web_workers)
            webs.append(amqp_web)
            urls.update(dict.fromkeys(AMQP_SIDES, amqp_url))
        schedule = [sides if n % 2 == 0 else sides[::-1] for n in range(plan.rounds)]
        for n, round_sides in enumerate(schedule):
            for side in round_sides:
                noop = side.startswith("noop")
                measure_side = (_noop(plan, amqp=side in AMQP_SIDES) if noop else
                                _drain(plan) if side == DRAIN else _pipeline(urls[side], plan))
                env = {"CHATHOOKS_TASK_EVENTS": "1"} if side == EVENTS else {}
                run = functools.partial(_with_worker, side, _concurrency(side, plan), ns, client, log_dir, n,
                                        measure_side, {**env, **brokers[side]})
                if side in PINNED_SIDES:
                    assert cores is not None
                    with pinning.pinned(others, cores[0]):
                        runs[side].append(run(pinning.taskset(cores[1])))
                else:
                    runs[side].append(run())
    finally:
        for server in webs:
            server.stop()
        ns.clean(client)
        if amqp:
            amqp_target.delete([ns.queue])
    runs.update(_trigger_runs(target, plan, log_dir, rules))
    figures = [_b3(runs, plan), _b3(runs, plan, side=DRAIN), _b3(runs, plan, side=CEILING), _b3c(runs), _b3e(runs),
               _b3t(runs), _b4(runs, plan),
               _b4(runs, plan, processes=4)]
    if cores:
        figures += [_b4(runs, plan, pinned=cores), _b4(runs, plan, processes=4, pinned=cores)]
    if amqp:
        figures += [_b3(runs, plan, " amqp"), _b4(runs, plan, " amqp")]
    return figures


# (namespace, client, warm-up?) -> (deliveries, seconds); a warm-up is small: each pool process runs a task.
Measure = Callable[[Namespace, redis.Redis, bool], tuple[int, float]]


def _concurrency(side: str, plan: Plan) -> int:
    """Worker processes: a side's ``-N`` suffix (pipeline-1, pinned-4), else the plan's."""
    number = side.split()[0].rpartition("-")[2]
    return int(number) if number.isdigit() else plan.worker_concurrency


def _with_worker(side: str, concurrency: int, ns: Namespace, client: redis.Redis, log_dir: Path, n: int,
                 measure_side: Measure, env: dict[str, str], prefix: list[str] | None = None) -> Run:
    app = "bench.noop" if side.startswith("noop") else "bench.ceiling" if side == CEILING else "workers"
    worker = start_celery_worker(ns.env(**env), log_dir, f"{side.replace(' ', '-')}-{n}", app=app,
                                 concurrency=concurrency, prefix=prefix or ())
    try:
        measure_side(ns, client, True)
        deliveries, seconds = measure_side(ns, client, False)
    finally:
        worker.stop()
        ns.clean(client)
        if "CELERY_BROKER_URL" in env:
            amqp_target.purge(ns.queue)
    return Run(side, concurrency, deliveries, seconds)


def _bodies(plan: Plan, warmup: bool, chats: int | None = None) -> list[str]:
    """A run's conversations (a warm-up's: enough for each pool process to run a task)."""
    chats = 2 * plan.worker_concurrency if warmup else chats or plan.pipeline_chats
    return conversations(uuid.uuid4().hex[:8], chats, plan.messages_per_chat).all


def _pipeline(url: str, plan: Plan, chats: int | None = None) -> Measure:
    def run(ns: Namespace, client: redis.Redis, warmup: bool) -> tuple[int, float]:
        bodies = _bodies(plan, warmup, chats)
        return len(bodies), post_and_wait(url, bodies, plan.connections, client, ns)

    return run


def _trigger_runs(target: RedisTarget, plan: Plan, log_dir: Path, rules: dict[str, Path]) -> dict[str, list[Run]]:
    """B3T's two sides: each its own namespace, web and worker, all running throughout; runs of
    ``trigger_chats`` conversations alternate between the sides, their order swapped every round."""
    client = target.client()
    namespaces = {side: target.namespace(side) for side in TRIGGER_SIDES}
    servers: list[Process] = []
    measures: dict[str, Measure] = {}
    runs: dict[str, list[Run]] = {side: [] for side in TRIGGER_SIDES}
    try:
        for side, ns in namespaces.items():
            env = ns.env(CHATHOOKS_RULES=str(rules[side]))
            web, url = start_gunicorn(APPS["ingress"], env, log_dir, f"{side}-web", plan.web_workers)
            servers.append(web)
            servers.append(start_celery_worker(env, log_dir, f"{side}-worker", concurrency=plan.worker_concurrency))
            measures[side] = _pipeline(url, plan, plan.trigger_chats)
            measures[side](ns, client, True)
        for n in range(plan.trigger_rounds):
            for side in TRIGGER_SIDES if n % 2 == 0 else TRIGGER_SIDES[::-1]:
                deliveries, seconds = measures[side](namespaces[side], client, False)
                runs[side].append(Run(side, plan.worker_concurrency, deliveries, seconds))
    finally:
        for server in reversed(servers):
            server.stop()
        for ns in namespaces.values():
            ns.clean(client)
    return runs


def _drain(plan: Plan) -> Measure:
    """The pipeline's conversations as the ingress would queue them, pushed at once: the workers alone."""

    def run(ns: Namespace, client: redis.Redis, warmup: bool) -> tuple[int, float]:
        settings = Settings.from_env(ns.env())
        deliveries = [livechat.to_delivery(livechat.load_envelope(json.loads(b)), settings)
                      for b in _bodies(plan, warmup)]
        messages = [delivery_message(d, ns.queue) for d in deliveries if d is not None]
        done = _processed(client, ns) + len(messages)
        started = _push(client, ns.queue, messages)
        return len(messages), _all_processed(client, ns, done, len(messages)) - started

    return run


def _push(client: redis.Redis, queue: str, messages: list[str]) -> float:
    """Push ``messages`` onto ``queue`` in one round trip of batches; returns when it began."""
    started = time.time()
    with client.pipeline(transaction=False) as pipe:
        for i in range(0, len(messages), 500):
            pipe.lpush(queue, *messages[i:i + 500])
        pipe.execute()
    return started


def _noop(plan: Plan, amqp: bool = False) -> Measure:
    """As many no-op tasks as a pipeline run has deliveries."""

    def run(ns: Namespace, client: redis.Redis, warmup: bool) -> tuple[int, float]:
        count = 4 * plan.worker_concurrency if warmup else plan.pipeline_chats * (plan.messages_per_chat + 2)
        if amqp:
            return count, _noop_amqp(ns, count)
        started = _push(client, ns.queue, [celery_message(NOOP, [], ns.queue) for _ in range(count)])

        def drained() -> bool:
            with client.pipeline(transaction=False) as pipe:
                pipe.llen(ns.queue)
                pipe.hlen(UNACKED)
                return not any(pipe.execute())

        return count, wait_until(drained, f"the workers to drain {count} no-op tasks", _patience(count)) - started

    return run


def _noop_amqp(ns: Namespace, count: int) -> float:
    """Publish ``count`` no-op tasks to RabbitMQ and wait until none is ready; returns the seconds."""
    with Connection(amqp_target.AMQP_URL) as conn:
        channel = conn.channel()
        started = time.time()
        for _ in range(count):
            channel.basic_publish(task_message(channel, NOOP, [], "()"), exchange="", routing_key=ns.queue)
    drained = wait_until(lambda: amqp_target.ready(ns.queue)[ns.queue] == 0,
                         f"the workers to drain {count} no-op tasks from RabbitMQ", _patience(count))
    return drained - started


def post_and_wait(url: str, bodies: list[str], connections: int, client: redis.Redis, ns: Namespace) -> float:
    """Post every body to the ingress and wait until the workers have processed them all;
    returns the seconds from the first request to the last handler done."""
    done = _processed(client, ns) + len(bodies)
    result = PythonLoad().replay(url, bodies, connections)
    check_errors("pipeline", result)
    if result.requests != len(bodies):
        raise BenchError(f"pipeline: {result.requests} of {len(bodies)} deliveries answered")
    assert result.started is not None  # the Python generator always knows
    return _all_processed(client, ns, done, len(bodies)) - result.started


def _all_processed(client: redis.Redis, ns: Namespace, done: int, count: int) -> float:
    """When the workers' ``processed`` count reached ``done`` (``count`` deliveries after it began)."""
    return wait_until(lambda: _processed(client, ns) >= done, f"the workers to process {count} deliveries",
                      _patience(count))


def _processed(client: redis.Redis, ns: Namespace) -> int:
    return int(client.hget(ns.keys.metrics, PROCESSED) or 0)


def _patience(items: int) -> float:
    return 60 + items / 20


_B3_SIDES = {  # B3's variants: the side measured against the no-op drain, its key's suffix, what it is, its rate
    "pipeline": ("", "pipeline deliveries/s", "pipeline /s"),
    DRAIN: (" drain", "pipeline deliveries pushed onto the queue, drained/s,", "pipeline /s"),
    CEILING: (" ceiling", "deliveries/s through the ingress to workers that run no handler", "ceiling /s"),
}


def _b3(runs: dict[str, list[Run]], plan: Plan, broker: str = "", side: str = "pipeline") -> Figure:
    """B3; with ``side`` DRAIN, its deliveries pushed onto the queue as the no-op's are (no ingress); with
    CEILING, through the ingress to workers that only count them processed (what B3 can be at most here)."""
    pipeline, noop = [r.rate for r in runs[side + broker]], [r.rate for r in runs["noop" + broker]]
    on = " (RabbitMQ)" if broker else ""
    suffix, what, rate = _B3_SIDES[side]
    return Figure(
        key="B3" + suffix + broker, title=f"{what} ÷ Celery no-op drain rate{on}",
        unit="ratio",
        value=ratios(pipeline, noop),
        sides={rate: Spread.of(pipeline), "no-op /s": Spread.of(noop)},
        details={"worker_concurrency": plan.worker_concurrency, "chats": plan.pipeline_chats,
                 "messages_per_chat": plan.messages_per_chat,
                 "runs": [r.to_dict() for name in (side, "noop") for r in runs[name + broker]]},
    )


def _b3c(runs: dict[str, list[Run]]) -> Figure:
    """The pipeline against its ceiling: the share of what this machine allows that the handlers leave."""
    pipeline, ceiling = [r.rate for r in runs["pipeline"]], [r.rate for r in runs[CEILING]]
    return Figure(
        key="B3 of ceiling", title="pipeline deliveries/s ÷ the same through workers that run no handler",
        unit="ratio", value=ratios(pipeline, ceiling),
        sides={"pipeline /s": Spread.of(pipeline), "ceiling /s": Spread.of(ceiling)},
        details={"runs": [r.to_dict() for r in runs[CEILING]]},
    )


def _b3e(runs: dict[str, list[Run]]) -> Figure:
    with_, without = [r.rate for r in runs[EVENTS]], [r.rate for r in runs["pipeline"]]
    return Figure(
        key="B3 events", title="pipeline deliveries/s with task events on (-E) ÷ off (the default)", unit="ratio",
        value=ratios(with_, without),
        sides={"events on /s": Spread.of(with_), "events off /s": Spread.of(without)},
        details={"runs": [r.to_dict() for r in runs[EVENTS]]},
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


def _b4(runs: dict[str, list[Run]], plan: Plan, broker: str = "", processes: int | None = None,
        pinned: tuple[set[int], set[int]] | None = None) -> Figure:
    """B4: ``processes`` (default the plan's) worker processes ÷ 1; ``pinned``: the pinned sides, with
    (everything else's cores, the workers' cores)."""
    processes = processes or plan.worker_concurrency
    kind = "pinned" if pinned else "pipeline"
    many_side = f"{kind}-{processes}" if pinned or processes != plan.worker_concurrency else "pipeline"
    many, one = [r.rate for r in runs[many_side + broker]], [r.rate for r in runs[f"{kind}-1" + broker]]
    on = " (RabbitMQ)" if broker else ""
    where = (f", workers on core{'s' if len(pinned[1]) > 1 else ''} {','.join(map(str, sorted(pinned[1])))}, Redis, "
             f"web and load on {','.join(map(str, sorted(pinned[0])))}") if pinned else ""
    key = "B4" + (f" ×{processes}" if processes != plan.worker_concurrency else "") + (" pinned" if pinned else "")
    return Figure(
        key=key + broker, title=f"pipeline with {processes} worker processes ÷ with 1{on}{where}", unit="ratio",
        value=ratios(many, one),
        sides={f"{processes} processes /s": Spread.of(many), "1 process /s": Spread.of(one)},
        details={"runs": [r.to_dict() for side in (many_side, f"{kind}-1") for r in runs[side + broker]]},
    )
