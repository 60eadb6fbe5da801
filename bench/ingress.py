"""B1 (throughput) and B2 (ack latency): the real ingress against a bare Flask app, same gunicorn, same load.

B1's other yardsticks run beside them: B1L, the bare app plus one Redis round trip that claims a
key and pushes the body (the least an ack that waits for Redis can cost), and B1N, the bare app
plus Celery's ``send_task`` (bench/baselines.py); the ingress on a private master with a replica,
each enqueue followed by ``WAIT 1`` (B1 WAIT: what Sentinel's guarantee costs); and, when RabbitMQ
is reachable, the ingress with RabbitMQ as its broker (B1 amqp). Every server runs for the whole measurement; each round
loads them one after another, the order rotating between rounds. Every ingress request carries
a new event id, so each is validated, deduplicated and durably queued; after each run the
benchmark checks that the queue holds every answered request, then empties it.
"""

from __future__ import annotations

import base64
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import redis

from bench import amqp_target
from bench.bodies import CHATBOT_PATH, CHATBOT_TOKEN, call_template, lhc_template, message_template, v2_template
from bench.checks import BenchError, check_errors, wait_until
from bench.load import PATH, LoadGenerator, LoadResult
from bench.plan import Plan
from bench.processes import start_gunicorn
from bench.pyload import PythonLoad
from bench.redis_target import Namespace, RedisTarget
from bench.stats import Figure, Spread, ratios
from chathooks.embedded_redis import EmbeddedRedis

APPS = {"bare": "bench.bare_app:create_app()", "ingress": "app:create_app()"}
BASELINES = {"claim-push": "bench.baselines:create_redis_app()", "send_task": "bench.baselines:create_send_task_app()"}
AMQP = "ingress amqp"
WAIT = "ingress WAIT"
WAIT_MS = 100  # CHATHOOKS_REDIS_WAIT_MS's default with sentinels
PACED = ("bare", "ingress")  # B2
ROUTES_SERVER = "ingress routes"  # the other webhook routes, with the credentials each needs
BASIC = ("bench", "bench-pass")
LHC_TOKEN = "bench-lhc-token"


@dataclass(frozen=True)
class Route:
    """A webhook route as B1L loads it: where, with what credentials, and a body template."""

    name: str
    path: str
    headers: tuple[str, ...]
    template: Callable[[], str]


ROUTES = (
    Route("v2", "/webhooks/livechat/v2",
          ("Authorization: Basic " + base64.b64encode(":".join(BASIC).encode()).decode(),), v2_template),
    Route("lhc", "/webhooks/lhc", (f"Authorization: Bearer {LHC_TOKEN}",), lhc_template),
    Route("chatbot", CHATBOT_PATH, (), call_template),
)
ROUTE_ENV = {"INGRESS_BASIC_AUTH": ":".join(BASIC), "LHC_WEBHOOK_SECRETS": LHC_TOKEN,
             "CHATBOT_WEBHOOK_TOKENS": CHATBOT_TOKEN}


def alternating(sides: tuple[str, ...], round_number: int) -> tuple[str, ...]:
    """ab, ba, ab, … (abc, bca, cab, … for more): no side always runs on a warmer (or more tired) machine."""
    if len(sides) == 2:
        return sides if round_number % 2 == 0 else (sides[1], sides[0])
    shift = round_number % len(sides)
    return sides[shift:] + sides[:shift]


def measure(target: RedisTarget, load: LoadGenerator, plan: Plan, log_dir: Path) -> list[Figure]:
    with ExitStack() as stack:
        return _measure(target, load, plan, log_dir, stack)


def _measure(target: RedisTarget, load: LoadGenerator, plan: Plan, log_dir: Path, stack: ExitStack) -> list[Figure]:
    ns = target.namespace("ingress")
    pacer = PythonLoad()  # wrk cannot hold a fixed rate against servers that close every connection
    apps = {**APPS, **BASELINES, WAIT: APPS["ingress"], ROUTES_SERVER: APPS["ingress"]}
    envs = {side: ns.env() for side in apps}
    envs[ROUTES_SERVER] = ns.env(**ROUTE_ENV)
    clients = dict.fromkeys(apps, target.client())
    # WAIT 1 after each enqueue needs a replica: a private master and replica of the same kind as the target.
    master = stack.enter_context(EmbeddedRedis(log_dir / "wait-master"))
    stack.enter_context(EmbeddedRedis(log_dir / "wait-replica", extra_args=("--replicaof", "127.0.0.1",
                                                                            str(master.port))))
    clients[WAIT] = redis.Redis.from_url(master.url)
    wait_until(lambda: clients[WAIT].info("replication")["connected_slaves"] >= 1, "the replica in sync", 30)
    envs[WAIT] = ns.env(REDIS_URL=master.url, CHATHOOKS_REDIS_WAIT_MS=str(WAIT_MS))
    if amqp_target.reachable():
        apps[AMQP] = APPS["ingress"]
        envs[AMQP] = ns.env(CELERY_BROKER_URL=amqp_target.AMQP_URL)
        clients[AMQP] = clients["ingress"]
    urls: dict[str, str] = {}
    servers = []
    try:
        for side, app in apps.items():
            server, urls[side] = start_gunicorn(app, envs[side], log_dir, side.replace(" ", "-"), plan.web_workers)
            servers.append(server)
        template = message_template()
        # Each side: its server, path, headers and body. A route's sides: the ingress's and the yardstick's.
        sides = {side: (side, PATH, (), template) for side in apps if side != ROUTES_SERVER}
        for route in ROUTES:
            body = route.template()
            sides[f"ingress {route.name}"] = (ROUTES_SERVER, route.path, route.headers, body)
            sides[f"claim-push {route.name}"] = ("claim-push", route.path, route.headers, body)
        clients.update({side: clients[server] for side, (server, *_) in sides.items() if side not in clients})
        for side, (server, path, headers, body) in sides.items():
            load.timed(urls[server], body, plan.warmup_seconds, plan.connections, path, headers)
            _empty(side, clients[side], ns)

        def run(side: str, rate: float | None) -> LoadResult:
            server, path, headers, body = sides[side]
            if rate is None:
                result = load.timed(urls[server], body, plan.seconds, plan.connections, path, headers)
            else:
                result = pacer.paced(urls[server], body, plan.seconds, plan.paced_connections, rate)
            check_errors(side, result)
            if server in ("ingress", AMQP, WAIT, ROUTES_SERVER):
                _check_queued(side, clients[side], ns, result)
            _empty(side, clients[side], ns)
            return result

        saturated = _rounds(plan, tuple(sides), lambda side: run(side, None))
        rate = plan.paced_share * statistics.median(r.rps for r in saturated["ingress"])
        paced = _rounds(plan, PACED, lambda side: run(side, rate))
    finally:
        for server in servers:
            server.stop()
        ns.clean(clients["ingress"])
        if AMQP in apps:
            amqp_target.delete([ns.queue])
    unreplicated = int(clients[WAIT].hget(ns.keys.metrics, "unreplicated:livechat") or 0)
    figures = [_b1(saturated, plan), _b2(paced, saturated, rate),
               _against("B1L", "ingress ÷ bare + one Redis round trip (claim and push)", saturated, "claim-push"),
               *(_against(f"B1L {r.name}", f"ingress ÷ bare + one round trip, on {r.path.split('?')[0]}", saturated,
                          f"claim-push {r.name}", f"ingress {r.name}") for r in ROUTES),
               _against("B1N", "ingress ÷ bare + Celery send_task", saturated, "send_task"),
               _against("B1 WAIT", f"ingress, each enqueue confirmed by a replica (WAIT 1, {WAIT_MS} ms), "
                        "÷ bare Flask", saturated, "bare", WAIT, unreplicated=unreplicated)]
    if AMQP in saturated:
        figures.append(_against("B1 amqp", "ingress on RabbitMQ ÷ bare Flask", saturated, "bare", AMQP))
    return figures


def _rounds(plan: Plan, sides: tuple[str, ...], run) -> dict[str, list[LoadResult]]:  # type: ignore[no-untyped-def]
    results: dict[str, list[LoadResult]] = {side: [] for side in sides}
    for n in range(plan.rounds):
        for side in alternating(sides, n):
            results[side].append(run(side))
    return results


def _check_queued(side: str, client: redis.Redis, ns: Namespace, result: LoadResult) -> None:
    queued = amqp_target.ready(ns.queue)[ns.queue] if side == AMQP else client.llen(ns.queue)
    # Requests still in flight when the load stopped may be queued without being counted as answered.
    if queued < result.requests:
        raise BenchError(f"{side} answered {result.requests} requests but queued {queued}")


def _empty(side: str, client: redis.Redis, ns: Namespace) -> None:
    ns.clean(client)
    if side == AMQP:
        amqp_target.purge(ns.queue)


def _against(key: str, title: str, saturated: dict[str, list[LoadResult]], baseline: str,
             side: str = "ingress", **details: object) -> Figure:
    rps = {name: [r.rps for r in saturated[name]] for name in (side, baseline)}
    return Figure(
        key=key, title=title, unit="ratio", value=ratios(rps[side], rps[baseline]),
        sides={f"{name} rps": Spread.of(v) for name, v in rps.items()},
        details={**details, "runs": _runs({name: saturated[name] for name in rps})},
    )


def _b1(saturated: dict[str, list[LoadResult]], plan: Plan) -> Figure:
    rps = {side: [r.rps for r in saturated[side]] for side in APPS}
    return Figure(
        key="B1", title="ingress throughput ÷ bare Flask", unit="ratio",
        value=ratios(rps["ingress"], rps["bare"]),
        sides={f"{side} rps": Spread.of(v) for side, v in rps.items()},
        details={"connections": plan.connections, "seconds": plan.seconds,
                 "runs": _runs({side: saturated[side] for side in APPS})},
    )


def _b2(paced: dict[str, list[LoadResult]], saturated: dict[str, list[LoadResult]], rate: float) -> Figure:
    p99 = {side: [r.latency_ms["p99"] for r in runs] for side, runs in paced.items()}
    saturated_p99 = {side: [r.latency_ms["p99"] for r in saturated[side]] for side in PACED}
    return Figure(
        key="B2", title="ingress p99 ÷ bare p99 at the same fixed rate", unit="ratio",
        value=ratios(p99["ingress"], p99["bare"]),
        sides={f"{side} p99 ms": Spread.of(v) for side, v in p99.items()},
        details={
            "rate_rps": round(rate, 1),
            "load_generator": PythonLoad.version,
            "saturated_p99_ratio": ratios(saturated_p99["ingress"], saturated_p99["bare"]).to_dict(),
            "runs": _runs(paced),
        },
    )


def _runs(results: dict[str, list[LoadResult]]) -> dict[str, list[dict[str, object]]]:
    return {side: [r.to_dict() for r in runs] for side, runs in results.items()}
