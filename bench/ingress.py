"""B1 (throughput) and B2 (ack latency): the real ingress against a bare Flask app, same gunicorn, same load.

Both servers run side by side for the whole measurement; each round loads one, then the
other, the order alternating between rounds. Every ingress request carries a new event id,
so each is validated, deduplicated and durably queued; after each round the benchmark checks
that the queue holds every answered request, then empties its namespace.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import redis

from bench.bodies import message_template
from bench.checks import BenchError, check_errors
from bench.load import LoadGenerator, LoadResult
from bench.plan import Plan
from bench.processes import start_gunicorn
from bench.pyload import PythonLoad
from bench.redis_target import Namespace, RedisTarget
from bench.stats import Figure, Spread, ratios

APPS = {"bare": "bench.bare_app:create_app()", "ingress": "app:create_app()"}


def alternating(sides: tuple[str, str], round_number: int) -> tuple[str, str]:
    """ab, ba, ab, …: neither side always runs on a warmer (or more tired) machine."""
    return sides if round_number % 2 == 0 else (sides[1], sides[0])


def measure(target: RedisTarget, load: LoadGenerator, plan: Plan, log_dir: Path) -> tuple[Figure, Figure]:
    ns = target.namespace("ingress")
    client = target.client()
    pacer = PythonLoad()  # wrk cannot hold a fixed rate against servers that close every connection
    env = ns.env()
    servers = [start_gunicorn(APPS["bare"], env, log_dir, "bare", plan.web_workers)]
    try:
        servers.append(start_gunicorn(APPS["ingress"], env, log_dir, "ingress", plan.web_workers))
        urls = dict(zip(APPS, (url for _, url in servers)))
        template = message_template()
        for side in APPS:
            load.timed(urls[side], template, plan.warmup_seconds, plan.connections)
        ns.clean(client)

        def run(side: str, rate: float | None) -> LoadResult:
            if rate is None:
                result = load.timed(urls[side], template, plan.seconds, plan.connections)
            else:
                result = pacer.paced(urls[side], template, plan.seconds, plan.paced_connections, rate)
            check_errors(side, result)
            if side == "ingress":
                _check_queued(client, ns, result)
            return result

        saturated = _rounds(plan, lambda side: run(side, None))
        rate = plan.paced_share * statistics.median(r.rps for r in saturated["ingress"])
        paced = _rounds(plan, lambda side: run(side, rate))
    finally:
        for server, _ in servers:
            server.stop()
        ns.clean(client)
    return _b1(saturated, plan), _b2(paced, saturated, rate)


def _rounds(plan: Plan, run) -> dict[str, list[LoadResult]]:  # type: ignore[no-untyped-def]
    results: dict[str, list[LoadResult]] = {side: [] for side in APPS}
    for n in range(plan.rounds):
        for side in alternating(tuple(APPS), n):  # type: ignore[arg-type]
            results[side].append(run(side))
    return results


def _check_queued(client: redis.Redis, ns: Namespace, result: LoadResult) -> None:
    queued = client.llen(ns.queue)
    # Requests still in flight when the load stopped may be queued without being counted as answered.
    if queued < result.requests:
        raise BenchError(f"the ingress answered {result.requests} requests but queued {queued}")
    ns.clean(client)


def _b1(saturated: dict[str, list[LoadResult]], plan: Plan) -> Figure:
    rps = {side: [r.rps for r in runs] for side, runs in saturated.items()}
    return Figure(
        key="B1", title="ingress throughput ÷ bare Flask", unit="ratio",
        value=ratios(rps["ingress"], rps["bare"]),
        sides={f"{side} rps": Spread.of(v) for side, v in rps.items()},
        details={"connections": plan.connections, "seconds": plan.seconds, "runs": _runs(saturated)},
    )


def _b2(paced: dict[str, list[LoadResult]], saturated: dict[str, list[LoadResult]], rate: float) -> Figure:
    p99 = {side: [r.latency_ms["p99"] for r in runs] for side, runs in paced.items()}
    saturated_p99 = {side: [r.latency_ms["p99"] for r in runs] for side, runs in saturated.items()}
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
