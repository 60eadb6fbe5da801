"""Soak: thousands of realistic webhooks through the real pipeline, then the ledger and Redis memory.

    python -m bench.soak [--webhooks 20000] [--smoke]

A private Redis (embedded, AOF on, so its memory figures are the pipeline's alone), gunicorn
(2 sync workers), a Celery worker and beat, all in dry-run: every automation runs, nothing is
sent anywhere. Concurrent posters replay conversations (each chat's webhooks in order, ~10%
delivered twice) as fast as the ingress answers while the worker consumes. Then:

- the ledger: every delivery answered ``queued`` once and its repeats ``duplicate``; the
  workers processed exactly as many deliveries as were queued; no queue, timer or dead letter
  left; every chat's timeline holds exactly its events; each side effect happened once (one
  list upsert per chat, one nudge per abandoned chat, each tag and reply once);
- memory: Redis ``used_memory`` and the pipeline's keys at baseline, at peak, and after the
  chats end (or are abandoned) and their TTLs pass. The processes run with short TTLs for this
  (``SOAK_TTLS``), so "after" comes within a minute.

Writes bench/results/soak.json and exits 1 when a check fails. Figures from a busy machine are
noisy; the checks are not timing-dependent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import redis
import yaml

from bench.checks import BenchError, wait_until
from bench.load import percentile
from chathooks.embedded_redis import EmbeddedRedis
from chathooks.events import Delivery
from chathooks.keys import Keys
from chathooks.platforms.livechat import adapter as livechat
from chathooks.settings import Settings
from tests.integration.beat import start_beat
from tests.integration.conversation import BOT_ID, Conversation, envelope
from tests.integration.processes import Process, start_web, start_worker
from workers.dispatch import TABLE

RESULTS = Path(__file__).with_name("results")
PATH = "/webhooks/livechat"
SECRET = "soak-secret"
PREFIX = "soak:"
QUEUE = f"{PREFIX}events"
KEYS = Keys(PREFIX)
# Blank: credentials in the caller's shell must never reach the soak's processes (no outbound call).
NO_CREDENTIALS = dict.fromkeys(("LIVECHAT_ACCOUNT_ID", "LIVECHAT_PAT", "LIVECHAT_ACCESS_TOKEN",
                                "LIVECHAT_BOT_SECRET", "MAILCHIMP_API_KEY", "MAILCHIMP_LIST_ID",
                                "CELERY_BROKER_URL", "INGRESS_BASIC_AUTH"), "")
# Short lifetimes so that everything a chat leaves behind expires while the soak waits.
SOAK_TTLS = {"CHATHOOKS_CHAT_TTL": 60, "CHATHOOKS_ENDED_CHAT_TTL": 20,
             "CHATHOOKS_DEDUPE_TTL": 60, "CHATHOOKS_STATE_DEDUPE_TTL": 30, "CHATHOOKS_PROFILE_TTL": 60}
SMOKE_TTLS = {"CHATHOOKS_CHAT_TTL": 10, "CHATHOOKS_ENDED_CHAT_TTL": 5,
              "CHATHOOKS_DEDUPE_TTL": 10, "CHATHOOKS_STATE_DEDUPE_TTL": 5, "CHATHOOKS_PROFILE_TTL": 10}
# Longer than any chat here lasts, so only the abandoned chats (backdated past it) are nudged.
NUDGE_AFTER = 600
REPEATED = 0.10  # share of deliveries LiveChat delivers a second time
ABANDONED = 0.05  # chats whose customer waits alone and whose end never arrives
MEMORY_SLACK = 1024 * 1024  # allocator and client-buffer noise allowed in "used_memory back to baseline"
TIMELINE_KINDS = frozenset(kind for kind, handlers in TABLE.items() if "timeline.record" in handlers)

OPENINGS = ("Hi, I want a refund for order #1042", "Hello, where is my order 5531?",
            "Hi there, I have a question about shipping", "My parcel arrived damaged, I need my money back")
CUSTOMER = ("Is there any update?", "Thanks!", "It's order #88213", "Can you check it please?", "ok")
AGENT = ("Let me check that for you.", "We apologise for the inconvenience, I'm on it.",
         "Your refund has been issued.", "Anything else I can help with?")
TAGS = ("vip", "follow-up", "refund")


@dataclass(frozen=True)
class Post:
    body: bytes
    delivery_id: str | None
    expect: str  # queued | duplicate | ignored


@dataclass
class Chat:
    conv: Conversation
    abandoned: bool
    posts: list[Post] = field(default_factory=list)
    timeline: set[str] = field(default_factory=set)  # event keys its timeline must hold


@dataclass(frozen=True)
class Answer:
    expect: str
    status: int  # 0: no HTTP answer
    outcome: str | None  # the JSON body's "status"
    id: str | None
    expected_id: str | None
    ms: float


# --- the conversations ---------------------------------------------------------------------


def _thread_body(conv: Conversation, action: str, **payload: Any) -> dict[str, Any]:
    body = envelope(action, conv.version)
    body["payload"] = {"chat_id": conv.chat_id, "thread_id": conv.thread_id, **payload}
    return body


def _script(conv: Conversation, rng: random.Random, now: float, abandoned: bool) -> Iterator[dict[str, Any]]:
    """One chat's webhooks in the order LiveChat sends them."""
    if abandoned:  # the customer wrote long ago and nobody answered: due for a nudge now
        t = now - NUDGE_AFTER - 60
        yield conv.start(t, rng.choice(OPENINGS)).body
        yield conv.customer_says(rng.choice(CUSTOMER), t + 5).body
        return
    t = now
    yield conv.start(t, rng.choice(OPENINGS)).body
    if rng.random() < 0.3:
        yield conv.bot_says("Thanks! An agent will be with you shortly.", t := t + 0.5).body
    for _ in range(rng.randint(0, 2)):
        yield conv.customer_says(rng.choice(CUSTOMER), t := t + 1).body
    yield conv.agent_joins(t := t + 1).body
    for _ in range(rng.randint(1, 3)):  # ends on an agent reply: no silence window left open
        if rng.random() < 0.5:
            yield conv.customer_says(rng.choice(CUSTOMER), t := t + 1).body
        yield conv.agent_says(rng.choice(AGENT), t := t + 1).body
    if rng.random() < 0.3:
        yield _thread_body(conv, "thread_tagged", tag=rng.choice(TAGS))
    if rng.random() < 0.4:
        for step in conv.rated(rng.randint(0, 1), t := t + 1):
            yield step.body
        if rng.random() < 0.1:
            yield _thread_body(conv, "thread_properties_deleted", properties={"rating": ["score", "comment"]})
    yield conv.deactivated().body


def _deliveries(bodies: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The bodies as delivered: some twice, right away (a retry) or after the chat's last webhook."""
    order, late = [], []
    for body in bodies:
        order.append(body)
        if rng.random() < REPEATED:
            (order if rng.random() < 0.5 else late).append(body)
    return order + late


def scenario(webhooks: int, settings: Settings, seed: int) -> list[Chat]:
    """Chats until about ``webhooks`` deliveries, each with its expected answers and timeline."""
    rng, now, chats, total = random.Random(seed), time.time(), [], 0
    while total < webhooks:
        conv = Conversation(rng.choice(("3.6", "3.6", "3.6", "3.5")),
                            customer_email=f"visitor.{len(chats)}.{seed}@example.org")
        chat = Chat(conv, abandoned=rng.random() < ABANDONED)
        seen: set[str] = set()
        for body in _deliveries(list(_script(conv, rng, now, chat.abandoned)), rng):
            body["secret_key"] = SECRET
            delivery = livechat.to_delivery(livechat.load_envelope(body), settings)
            chat.posts.append(Post(json.dumps(body).encode(), delivery and delivery.id, _expect(delivery, seen)))
            if delivery is not None:
                chat.timeline |= {e.key for e in delivery.events if e.kind in TIMELINE_KINDS}
        chats.append(chat)
        total += len(chat.posts)
    return chats


def _expect(delivery: Delivery | None, seen: set[str]) -> str:
    if delivery is None:
        return "ignored"
    if delivery.id in seen:
        return "duplicate"
    seen.add(delivery.id)
    return "queued"


# --- load ----------------------------------------------------------------------------------


def post_chats(port: int, chats: list[Chat], posters: int, deadline: float,
               done: Callable[[Chat], None]) -> list[Answer]:
    """Each poster takes a whole chat and posts its webhooks in order; LiveChat-like, a failed
    delivery is tried again (3 tries), and ``done`` hears of every chat fully delivered."""
    todo: queue.SimpleQueue[Chat] = queue.SimpleQueue()
    for chat in chats:
        todo.put(chat)
    answers: list[Answer] = []
    lock = threading.Lock()

    def poster() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        try:
            while time.monotonic() < deadline:
                try:
                    chat = todo.get_nowait()
                except queue.Empty:
                    break
                for post in chat.posts:
                    mine.extend(_deliver(conn, post))
                done(chat)
        finally:
            conn.close()
            with lock:
                answers.extend(mine)

    with ThreadPoolExecutor(posters) as pool:
        for future in [pool.submit(poster) for _ in range(posters)]:
            future.result()
    return answers


def _deliver(conn: http.client.HTTPConnection, post: Post) -> list[Answer]:
    tries = []
    for _ in range(3):
        started = time.perf_counter()
        try:
            # gunicorn's sync workers close each connection; http.client reopens it as needed.
            conn.request("POST", PATH, body=post.body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            status, data = response.status, response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            status, data = 0, b""
        ms = (time.perf_counter() - started) * 1000
        try:
            reply = json.loads(data) if data else {}
        except ValueError:
            reply = {}
        tries.append(Answer(post.expect, status, reply.get("status"), reply.get("id"), post.delivery_id, ms))
        if status == 200:
            break
    return tries


# --- watching Redis ------------------------------------------------------------------------


class Every:
    """Calls ``tick`` every ``interval`` seconds in a background thread until stopped; a Redis hiccup skips a tick."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._interval, self._tick = interval, tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except redis.RedisError:
                pass


class Watch:
    """The pipeline's keys, memory and counters, sampled in the background for peaks and a series."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        # One each, bounded: the counters, the histograms and the capped record.
        self.fixed = {KEYS.metrics, KEYS.observed, KEYS.outbound}
        self.peak = {"used_memory": 0, "keys": 0}
        self.series: list[dict[str, float]] = []
        self.sampler = Every(0.5, self._sample)
        self.t0 = time.monotonic()

    def counters(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(KEYS.metrics).items()}

    def depth(self) -> int:
        return int(self.redis.llen(QUEUE)) + int(self.redis.llen(f"{QUEUE}.scheduled"))

    def scheduled(self) -> int:
        return int(self.redis.zcard(f"{PREFIX}schedule"))

    def dead_letters(self) -> int:
        return int(self.redis.zcard(KEYS.dead_letters))

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def key_names(self) -> list[str]:
        return [k.decode() for k in self.redis.scan_iter(f"{PREFIX}*", count=1000)]

    def snapshot(self) -> dict[str, Any]:
        """Memory and keys now: by group (``dedupe``, ``timeline``, …) and those without a TTL."""
        names = self.key_names()
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.ttl(name)
            ttls = pipe.execute()
        groups = Counter(self._group(n) for n in names)
        persistent = sorted({self._group(n) for n, ttl in zip(names, ttls) if ttl == -1 and n not in self.fixed})
        memory = self.redis.info("memory")
        return {"used_memory": memory["used_memory"], "dataset_bytes": memory["used_memory_dataset"],
                "clients_bytes": memory["mem_clients_normal"], "scripts_bytes": memory["used_memory_scripts"],
                "fixed_bytes": sum(self.redis.memory_usage(k) or 0 for k in self.fixed), "keys": len(names),
                "chat_keys": sum(1 for n in names if n not in self.fixed), "groups": dict(sorted(groups.items())),
                "persistent_groups": persistent}

    def chat_keys(self) -> int:
        return sum(1 for n in self.key_names() if n not in self.fixed)

    def _group(self, name: str) -> str:
        return name.removeprefix(PREFIX).split(":", 1)[0]

    def _sample(self) -> None:
        keys = int(self.redis.dbsize())  # the private server's: the pipeline's and the broker's
        used, counters, depth = self.used_memory(), self.counters(), self.depth()
        self.peak = {"used_memory": max(self.peak["used_memory"], used), "keys": max(self.peak["keys"], keys)}
        self.series.append({"t": round(time.monotonic() - self.t0, 1), "used_memory": used, "keys": keys,
                            "queue_depth": depth, "queued": counters.get("queued:livechat", 0),
                            "processed": counters.get("processed:livechat", 0)})


class Timelines:
    """Checks each fully delivered chat's timeline until it holds exactly the chat's events.

    Checked as they complete, not at the end: a timeline lives CHAT_TTL after its last event,
    which the short soak TTLs make shorter than the whole run.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.pending: dict[str, Chat] = {}
        self._arrived: queue.SimpleQueue[Chat] = queue.SimpleQueue()
        self.checker = Every(0.5, self.check)

    def delivered(self, chat: Chat) -> None:
        self._arrived.put(chat)

    def check(self) -> None:
        while not self._arrived.empty():
            chat = self._arrived.get()
            self.pending[chat.conv.chat_id] = chat
        chats = list(self.pending.values())
        with self.redis.pipeline(transaction=False) as pipe:
            for chat in chats:
                pipe.zcard(KEYS.timeline(chat.conv.chat_id))
            sizes = pipe.execute()
        for chat, size in zip(chats, sizes):
            if size >= len(chat.timeline) and self.found(chat) == chat.timeline:
                del self.pending[chat.conv.chat_id]

    def all_found(self) -> bool:
        return not self.pending and self._arrived.empty()

    def found(self, chat: Chat) -> set[str]:
        entries = (json.loads(m) for m in self.redis.zrange(KEYS.timeline(chat.conv.chat_id), 0, -1))
        return {e["key"] for e in entries if "type" not in e}  # the events (deliveries, effects: workers.journal)


def held_within(done: Callable[[], bool], what: str, timeout: float, interval: float) -> bool:
    """Whether ``done`` came to hold within ``timeout`` seconds: the report records a timeout, a check fails on it."""
    try:
        wait_until(done, what, timeout, interval)
    except BenchError:
        return False
    return True


# --- side effects (dry-run records in the worker's log) ------------------------------------

_EFFECT = re.compile(r"\] (dry-run|sent) (tag_thread|send_event|upsert_member) (\{.*\})\s*$")
_EFFECT_KEY: dict[str, Callable[[dict[str, Any]], tuple[str, ...]]] = {
    "tag_thread": lambda p: ("tag", p["thread_id"], p["tag"]),
    "send_event": lambda p: ("send", p["custom_id"]),
    "upsert_member": lambda p: ("upsert", p["email"].lower()),
}


def side_effects(worker_log: str) -> Counter[tuple[str, ...]]:
    """Each outbound write the worker logged, by what identifies it."""
    effects: Counter[tuple[str, ...]] = Counter()
    for line in worker_log.splitlines():
        if match := _EFFECT.search(line):
            effects[_EFFECT_KEY[match[2]](json.loads(match[3]))] += 1
    return effects


def effect_checks(effects: Counter[tuple[str, ...]], chats: list[Chat]) -> tuple[dict[str, int], dict[str, bool]]:
    nudged = Counter(k[1].split(":")[1] for k in effects if k[0] == "send" and k[1].startswith("nudge:"))
    upserts = {k[1] for k in effects if k[0] == "upsert"}
    figures = {"tags": sum(1 for k in effects if k[0] == "tag"), "upserts": len(upserts),
               "nudges": sum(nudged.values()),
               "rating_replies": sum(1 for k in effects if k[0] == "send" and k[1].startswith("rating:"))}
    checks = {
        "each side effect once": all(n == 1 for n in effects.values()),
        "one list upsert per chat": upserts == {c.conv.customer_email.lower() for c in chats},
        "one nudge per abandoned chat, none elsewhere": set(nudged) == {c.conv.thread_id for c in chats if c.abandoned},
    }
    return figures, checks


# --- the run -------------------------------------------------------------------------------


@dataclass
class Options:
    webhooks: int = 20_000
    smoke: bool = False
    posters: int = 16
    web_workers: int = 2
    worker_concurrency: int = 2
    seed: int = 20250901
    out: Path = RESULTS / "soak.json"
    keep: bool = False

    @property
    def ttls(self) -> dict[str, int]:
        return SMOKE_TTLS if self.smoke else SOAK_TTLS


def stack_env(redis_url: str, opts: Options, rules: Path) -> dict[str, str]:
    """Dry-run processes on the private Redis, with the soak's rules, bot and short TTLs."""
    return {**NO_CREDENTIALS, "REDIS_URL": redis_url, "CHATHOOKS_KEY_PREFIX": PREFIX, "CHATHOOKS_QUEUE": QUEUE,
            "LIVECHAT_WEBHOOK_SECRETS": SECRET, "CHATHOOKS_DRY_RUN": "1", "CHATHOOKS_RULES": str(rules),
            "LIVECHAT_BOT_ID": BOT_ID, **{k: str(v) for k, v in opts.ttls.items()}}


def start_stack(env: dict[str, str], log_dir: Path, opts: Options) -> tuple[list[Process], str]:
    started: list[Process] = []
    try:
        web, url = start_web(env, log_dir, workers=opts.web_workers)
        started.append(web)
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(start_worker, env, log_dir, "worker", concurrency=opts.worker_concurrency),
                       pool.submit(start_beat, env, log_dir)]
        started += [f.result() for f in futures if f.exception() is None]
        for f in futures:
            if f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
    except BaseException:
        for proc in started:
            proc.stop()
        raise
    return started, url


def write_rules(path: Path) -> Path:
    """The built-in rules, with the nudge threshold the scenario is built around."""
    rules = yaml.safe_load(files("chathooks").joinpath("default_rules.yaml").read_text(encoding="utf-8"))
    rules["nudge"]["after_seconds"] = NUDGE_AFTER
    path.write_text(json.dumps(rules))
    return path


def run(opts: Options) -> dict[str, Any]:
    """The whole soak; returns the report (also written to ``opts.out``)."""
    work = Path(tempfile.mkdtemp(prefix="chathooks-soak-"))
    began = time.monotonic()
    try:
        with EmbeddedRedis(work / "redis") as server:
            report = _soak(opts, server.url, work)
    except BaseException:
        print(f"soak: processes' logs kept in {work / 'logs'}", file=sys.stderr)
        raise
    report["durations_s"]["total"] = round(time.monotonic() - began, 1)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    if report["ok"] and not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"soak: processes' logs kept in {work / 'logs'}", file=sys.stderr)
    return report


def _soak(opts: Options, redis_url: str, work: Path) -> dict[str, Any]:
    log_dir = work / "logs"
    log_dir.mkdir()
    client = redis.Redis.from_url(redis_url)
    env = stack_env(redis_url, opts, write_rules(work / "rules.json"))
    settings = Settings.from_env(env)
    t = time.monotonic()
    chats = scenario(opts.webhooks, settings, opts.seed)
    posts = sum(len(c.posts) for c in chats)
    print(f"soak: {posts} webhooks in {len(chats)} chats ({sum(c.abandoned for c in chats)} abandoned), "
          f"built in {time.monotonic() - t:.1f}s; short TTLs for the soak: "
          + ", ".join(f"{k}={v}" for k, v in opts.ttls.items()))

    t = time.monotonic()
    processes, url = start_stack(env, log_dir, opts)
    worker = next(p for p in processes if p.name == "worker")
    try:
        startup = time.monotonic() - t
        time.sleep(2)  # beat's first ticks and the worker's queue bindings belong to the baseline
        watch = Watch(client)
        baseline = watch.snapshot()
        print(f"soak: stack up in {startup:.1f}s; baseline {baseline['keys']} keys, used_memory "
              f"{baseline['used_memory']} B")
        timelines = Timelines(client)
        watch.sampler.start()
        timelines.checker.start()

        load_started = time.monotonic()
        budget = max(120.0, posts / 20)
        answers = post_chats(int(url.rsplit(":", 1)[1]), chats, opts.posters, load_started + budget,
                             timelines.delivered)
        load_s = time.monotonic() - load_started
        print(f"soak: {len(answers)} requests in {load_s:.1f}s ({len(answers) / load_s:.0f}/s); draining")

        def drained() -> bool:
            c = watch.counters()
            return (c.get("processed:livechat", 0) >= c.get("queued:livechat", 0) and watch.depth() == 0
                    and watch.scheduled() == 0 and timelines.all_found())

        drained_in_time = held_within(drained, "the workers to drain", max(60.0, posts / 20), interval=0.5)
        drain_s = time.monotonic() - load_started
        timelines.checker.stop()
        timelines.check()
        at_drain = watch.snapshot()
        counters = watch.counters()
        print(f"soak: processed {counters.get('processed:livechat', 0)} of {counters.get('queued:livechat', 0)} "
              f"queued {drain_s:.1f}s after the first post; waiting for the TTLs")

        ttl_started = time.monotonic()
        held_within(lambda: watch.chat_keys() <= baseline["chat_keys"], "chat keys back to baseline",
                    max(opts.ttls.values()) + 30, interval=1)
        ttl_s = time.monotonic() - ttl_started
        watch.sampler.stop()
        after = watch.snapshot()
        effects = side_effects(worker.log())
        dead, depth, scheduled = watch.dead_letters(), watch.depth(), watch.scheduled()
    finally:
        for proc in processes:
            proc.stop()

    return _report(opts, chats, answers, counters, timelines, effects, dead=dead, depth=depth, scheduled=scheduled,
                   drained=drained_in_time, durations={"startup": startup, "load": load_s, "drain": drain_s,
                                                       "ttl_wait": ttl_s},
                   memory={"baseline": baseline, "peak": watch.peak, "drained": at_drain, "after": after},
                   series=watch.series)


def _report(opts: Options, chats: list[Chat], answers: list[Answer], counters: dict[str, int], timelines: Timelines,
            effects: Counter[tuple[str, ...]], *, dead: int, depth: int, scheduled: int, drained: bool,
            durations: dict[str, float], memory: dict[str, Any],
            series: list[dict[str, float]]) -> dict[str, Any]:
    outcomes = Counter(a.outcome for a in answers if a.status == 200)
    failures = Counter(str(a.status) for a in answers if a.status != 200)
    posts = [p for c in chats for p in c.posts]
    wrong = [a for a in answers if a.status == 200 and (a.outcome != a.expect or a.id != a.expected_id)]
    queued_ids = Counter(a.id for a in answers if a.outcome == "queued")
    server = {k: counters.get(f"{k}:livechat", 0) for k in ("received", "queued", "duplicate", "ignored", "processed")}
    figures, effect_ok = effect_checks(effects, chats)
    baseline, after = memory["baseline"], memory["after"]
    grown = (after["used_memory"] - after["fixed_bytes"]) - (baseline["used_memory"] - baseline["fixed_bytes"])
    checks = {
        "every webhook answered 200": sum(outcomes.values()) == len(posts),
        "each answer as expected (queued once, repeats duplicate, ids match)": not wrong,
        "each delivery queued exactly once": all(n == 1 for n in queued_ids.values())
                                             and len(queued_ids) == sum(p.expect == "queued" for p in posts),
        "server queued == queued answers": server["queued"] == outcomes["queued"],
        "server duplicates == duplicate answers": server["duplicate"] == outcomes["duplicate"],
        "processed == queued": drained and server["processed"] == server["queued"],
        "queues empty": depth == 0,
        "no timer left": scheduled == 0,
        "no dead letters": dead == 0,
        "every timeline complete": not timelines.pending,
        **effect_ok,
        "chat keys back to baseline": after["chat_keys"] == baseline["chat_keys"],
        "no key without a TTL but the fixed ones": not memory["drained"]["persistent_groups"],
        "used_memory back to baseline (but the fixed keys)": grown <= MEMORY_SLACK,
    }
    latencies = sorted(a.ms for a in answers if a.status == 200)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": all(checks.values()),
        "checks": checks,
        "config": {"webhooks": opts.webhooks, "smoke": opts.smoke, "posters": opts.posters,
                   "web_workers": opts.web_workers, "worker_concurrency": opts.worker_concurrency,
                   "seed": opts.seed, "ttls_s": opts.ttls, "nudge_after_s": NUDGE_AFTER},
        "scenario": {"chats": len(chats), "abandoned_chats": sum(c.abandoned for c in chats), "webhooks": len(posts),
                     "repeats": sum(p.expect == "duplicate" for p in posts),
                     "timeline_events": sum(len(c.timeline) for c in chats)},
        "answers": {"requests": len(answers), **{k or "none": v for k, v in outcomes.items()},
                    "non_200": dict(failures), "unexpected": len(wrong),
                    "unexpected_sample": [asdict(a) for a in wrong[:5]]},
        "server": server,
        "pipeline": {"queue_depth": depth, "scheduled": scheduled, "dead_letters": dead,
                     "incomplete_timelines": sorted(timelines.pending)[:20], "side_effects": figures},
        "rates_per_s": {"ingress": _rate(len(answers), durations["load"]),
                        "pipeline": _rate(server["processed"], durations["drain"])},
        "latency_ms": _latency(latencies),
        "durations_s": {k: round(v, 1) for k, v in durations.items()},
        # The peak holds the queue's backlog too, not only chat state.
        "memory": memory | {"grown_bytes": grown, "peak_growth_per_chat": _rate(
            memory["peak"]["used_memory"] - baseline["used_memory"], len(chats))},
        "series": series,
    }


def _latency(sorted_ms: list[float]) -> dict[str, float]:
    if not sorted_ms:
        return {}
    return {"p50": round(percentile(sorted_ms, 50), 1), "p99": round(percentile(sorted_ms, 99), 1),
            "max": round(sorted_ms[-1], 1)}


def _rate(n: float, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def print_report(report: dict[str, Any]) -> None:
    mem = report["memory"]
    print("\nchathooks soak" + (" (smoke)" if report["config"]["smoke"] else ""))
    print(f"  {report['scenario']['webhooks']} webhooks, {report['scenario']['chats']} chats, "
          f"{report['scenario']['repeats']} repeated deliveries; TTLs {report['config']['ttls_s']}")
    print(f"  answers: {json.dumps({k: v for k, v in report['answers'].items() if k != 'unexpected_sample'})}")
    print(f"  server:  {json.dumps(report['server'])}")
    print(f"  ingress {report['rates_per_s']['ingress']}/s (latency ms {json.dumps(report['latency_ms'])}); "
          f"pipeline {report['rates_per_s']['pipeline']}/s")
    print(f"  durations: {json.dumps(report['durations_s'])}")
    print(f"  side effects: {json.dumps(report['pipeline']['side_effects'])}")
    print(f"  memory peak     used_memory {mem['peak']['used_memory']:>11,} B  keys {mem['peak']['keys']:>7,}  "
          f"(sampled; {mem['peak_growth_per_chat']:.0f} B per chat over baseline, queue backlog included)")
    for stage in ("baseline", "drained", "after"):
        print(f"  memory {stage:<8} used_memory {mem[stage]['used_memory']:>11,} B  keys {mem[stage]['keys']:>7,}  "
              f"{json.dumps(mem[stage]['groups'])}")
    for name, ok in report["checks"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--webhooks", type=int, default=None, help="deliveries to post (default 20000; smoke 300)")
    parser.add_argument("--smoke", action="store_true", help="a few hundred webhooks and short TTLs: seconds")
    parser.add_argument("--posters", type=int, default=16, help="concurrent posting connections")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--out", type=Path, default=None, help="report file (default bench/results/soak.json)")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs and Redis data")
    args = parser.parse_args(argv)
    opts = Options(webhooks=args.webhooks or (300 if args.smoke else 20_000), smoke=args.smoke, posters=args.posters,
                   worker_concurrency=args.worker_concurrency, seed=args.seed, keep=args.keep,
                   out=args.out or RESULTS / ("soak-smoke.json" if args.smoke else "soak.json"))
    report = run(opts)
    print_report(report)
    print(f"\nwritten to {opts.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
