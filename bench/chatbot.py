"""B6: the ChatBot answer. p99 of ``POST /webhooks/chatbot`` at a fixed rate against the bare app's, and in ms.

Each call has a new ``messageId`` and the email of a returning customer whose profile is seeded
first, so every request reads the profile, renders a templated answer (two responses, attributes)
and durably queues the call. Both servers run side by side; the rounds alternate them.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis

from bench.bodies import CHATBOT_PATH as PATH
from bench.bodies import CHATBOT_TOKEN as TOKEN
from bench.bodies import EMAIL, call_template
from bench.checks import BenchError, check_errors
from bench.ingress import APPS, alternating
from bench.load import LoadResult
from bench.plan import Plan
from bench.processes import start_gunicorn
from bench.pyload import PythonLoad
from bench.redis_target import Namespace, RedisTarget
from bench.stats import Figure, Spread, ratios
from chathooks.profiles import Profiles

RULES = {"chatbot": [
    {"block": "orders", "if": {"customer.known": True},
     "responses": [{"type": "text", "message": "Welcome back, {{customer.name}}!"},
                   {"type": "quickReplies", "title": "Is it about order {{attributes.order_no}}?", "buttons": [
                       {"type": "postback", "title": "Yes", "value": "order-{{attributes.order_no}}"},
                       {"type": "postback", "title": "No", "value": "other"}]}],
     "attributes": {"returning_customer": "{{customer.known}}", "previous_chats": "{{customer.chats}}",
                    "last_rating": "{{customer.last_rating}}", "tags": "{{customer.tags}}"}},
    {"block": "*", "attributes": {"returning_customer": "{{customer.known}}"}},
]}


def measure(target: RedisTarget, plan: Plan, log_dir: Path) -> Figure:
    ns = target.namespace("chatbot")
    client = target.client()
    rules = log_dir / "chatbot-rules.json"
    rules.write_text(json.dumps(RULES))
    env = ns.env(CHATBOT_WEBHOOK_TOKENS=TOKEN, CHATHOOKS_RULES=str(rules))
    pacer = PythonLoad()
    servers = [start_gunicorn(APPS["bare"], env, log_dir, "b6-bare", plan.web_workers)]
    try:
        servers.append(start_gunicorn(APPS["ingress"], env, log_dir, "b6-ingress", plan.web_workers))
        urls = dict(zip(APPS, (url for _, url in servers)))
        template = call_template()

        def run(side: str) -> LoadResult:
            _seed(client, ns)
            result = pacer.paced(urls[side], template, plan.seconds, plan.paced_connections, plan.chatbot_rate,
                                 path=PATH)
            check_errors(side, result)
            if side == "ingress":
                _check_queued(client, ns, result)
            return result

        for side in APPS:
            pacer.paced(urls[side], template, plan.warmup_seconds, plan.paced_connections, plan.chatbot_rate,
                        path=PATH)
        results: dict[str, list[LoadResult]] = {side: [] for side in APPS}
        for n in range(plan.rounds):
            for side in alternating(tuple(APPS), n):  # type: ignore[arg-type]
                results[side].append(run(side))
    finally:
        for server, _ in servers:
            server.stop()
        ns.clean(client)
    p99 = {side: [r.latency_ms["p99"] for r in runs] for side, runs in results.items()}
    return Figure(
        key="B6", title="ChatBot answer p99 ÷ bare p99 at the same fixed rate", unit="ratio",
        value=ratios(p99["ingress"], p99["bare"]),
        sides={"bare p99 ms": Spread.of(p99["bare"]), "chatbot p99 ms": Spread.of(p99["ingress"])},
        details={"rate_rps": plan.chatbot_rate, "connections": plan.paced_connections,
                 "load_generator": PythonLoad.version,
                 "runs": {side: [r.to_dict() for r in runs] for side, runs in results.items()}},
    )


def _seed(client: redis.Redis, ns: Namespace) -> None:
    """A returning customer: two chats, a bad rating. The namespace is emptied between rounds."""
    ns.clean(client)
    profiles = Profiles(client, ns.keys, 3600, 600)
    for chat in ("B6-1", "B6-2"):
        profiles.seen("livechat", chat, email=EMAIL, name="Jane Roe", at=1_756_720_800.0)
    profiles.rated("livechat", "B6-2", "bad", 1_756_720_900.0)


def _check_queued(client: redis.Redis, ns: Namespace, result: LoadResult) -> None:
    if client.llen(ns.queue) < result.requests:
        raise BenchError(f"the ingress answered {result.requests} ChatBot calls but queued {client.llen(ns.queue)}")
