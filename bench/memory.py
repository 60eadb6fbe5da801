"""B5: Redis bytes per tracked chat, and the pipeline's keys back to baseline once chats end and TTLs pass.

The web and worker processes run with short TTLs (CHATHOOKS_CHAT_TTL and friends) so the
return to baseline takes seconds, and with the 20 triggers of B3T (bench/rules.py), so the
state kept for triggers (the ``trigger`` family) is counted. A warm-up conversation first creates the keys that outlive
any chat (counters, the bounded record of outbound actions); once its own keys expire, that
is the baseline. Then N chats start and talk (measured: bytes per chat, by key family), all
end, and the benchmark waits for the key count to come back down to the baseline.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.bodies import conversations
from bench.checks import wait_until
from bench.ingress import APPS
from bench.pipeline import post_and_wait
from bench.plan import Plan
from bench.processes import start_celery_worker, start_gunicorn
from bench.redis_target import Namespace, RedisTarget
from bench.rules import write_rules
from bench.stats import Figure, Spread


@dataclass(frozen=True)
class Snapshot:
    keys: int
    bytes: int  # MEMORY USAGE summed over the namespace's keys
    families: dict[str, tuple[int, int]]  # "timeline": (keys, bytes), …
    used_memory: int  # INFO memory, the whole server

    def to_dict(self) -> dict[str, object]:
        return {"keys": self.keys, "bytes": self.bytes, "used_memory": self.used_memory,
                "families": {name: {"keys": k, "bytes": b} for name, (k, b) in sorted(self.families.items())}}


def snapshot(client: redis.Redis, ns: Namespace) -> Snapshot:
    names = list(client.scan_iter(f"{ns.prefix}*", count=1000))
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        sizes = pipe.execute()
    keys, sizes_by = Counter(), Counter()
    for name, size in zip(names, sizes):
        family = name.decode()[len(ns.prefix):].split(":")[0]
        keys[family] += 1
        sizes_by[family] += size or 0  # expired between SCAN and MEMORY USAGE
    return Snapshot(len(names), sum(sizes_by.values()), {f: (keys[f], sizes_by[f]) for f in keys},
                    int(client.info("memory")["used_memory"]))


def measure(target: RedisTarget, plan: Plan, log_dir: Path) -> Figure:
    ns = target.namespace("memory")
    client = target.client()
    env = ns.env(CHATHOOKS_CHAT_TTL=str(plan.chat_ttl), CHATHOOKS_DEDUPE_TTL=str(plan.chat_ttl),
                 CHATHOOKS_ENDED_CHAT_TTL=str(plan.ended_ttl), CHATHOOKS_STATE_DEDUPE_TTL=str(plan.ended_ttl),
                 CHATHOOKS_PROFILE_TTL=str(plan.chat_ttl), CHATHOOKS_RULES=str(write_rules(log_dir)["triggers"]))
    web, url = start_gunicorn(APPS["ingress"], env, log_dir, "memory-web", plan.web_workers)
    try:
        worker = start_celery_worker(env, log_dir, "memory-worker", concurrency=plan.worker_concurrency)
        try:
            def post(bodies: list[str]) -> None:
                post_and_wait(url, bodies, plan.connections, client, ns)

            post(conversations(uuid.uuid4().hex[:8], 1, plan.memory_messages).all)
            time.sleep(plan.chat_ttl + 1)  # the warm-up chat's own keys expire
            baseline = snapshot(client, ns)
            chats = conversations(uuid.uuid4().hex[:8], plan.memory_chats, plan.memory_messages)
            post(chats.opening)
            tracked = snapshot(client, ns)
            post(chats.ending)
            ended = snapshot(client, ns)
            ended_at = time.time()
            back = wait_until(lambda: snapshot(client, ns).keys <= baseline.keys, "keys back to baseline",
                               plan.chat_ttl + plan.ended_ttl + 30, interval=0.5)
            after = snapshot(client, ns)
        finally:
            worker.stop()
    finally:
        web.stop()
        ns.clean(client)
    per_chat = (tracked.bytes - baseline.bytes) / plan.memory_chats
    # Each chat here has a customer of its own: their profile, and the chat's link to it.
    per_customer = (ended.families.get("profile", (0, 0))[1] - baseline.families.get("profile", (0, 0))[1]) / \
        plan.memory_chats
    server_per_chat = (tracked.used_memory - baseline.used_memory) / plan.memory_chats
    per_chat_triggers = (tracked.families.get("trigger", (0, 0))[1] - baseline.families.get("trigger", (0, 0))[1]) / \
        plan.memory_chats
    return Figure(
        key="B5", title="Redis bytes per tracked chat; keys back to baseline after TTLs", unit="bytes/chat",
        value=Spread.of([per_chat]),
        sides={"used_memory delta /chat": Spread.of([server_per_chat]),
               "profile bytes /customer": Spread.of([per_customer]),
               "trigger state bytes /chat": Spread.of([per_chat_triggers])},
        details={
            "chats": plan.memory_chats, "messages_per_chat": plan.memory_messages,
            "ttl_seconds": {"chat_dedupe_and_profile": plan.chat_ttl, "ended_chat_and_state_dedupe": plan.ended_ttl},
            "profile_bytes_per_customer": round(per_customer),
            "trigger_state_bytes_per_chat": round(per_chat_triggers), "rules": "default rules and 20 triggers",
            "keys": {"baseline": baseline.keys, "tracked": tracked.keys, "ended": ended.keys, "after": after.keys},
            "bytes_per_chat_by_family": {
                name: round((size - baseline.families.get(name, (0, 0))[1]) / plan.memory_chats)
                for name, (_, size) in sorted(tracked.families.items())},
            "returned_to_baseline": after.keys <= baseline.keys and set(after.families) <= set(baseline.families),
            "seconds_to_baseline_after_end": round(back - ended_at, 1),
            "snapshots": {"baseline": baseline.to_dict(), "tracked": tracked.to_dict(), "after": after.to_dict()},
        },
    )

