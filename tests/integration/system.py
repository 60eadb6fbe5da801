"""The running pipeline for end-to-end tests: its processes, rules, fakes' wiring, and what to ask it.

Real gunicorn, a real Celery worker and beat, the real Redis of ``pipeline_env``; FakeLiveChat and
FakeMailchimp run in the test's process on loopback and record every call the automations make.
A conversation (tests/integration/conversation.py) is mirrored into FakeLiveChat as it happens —
events stored, the agent joining, the chat ending — before each webhook is posted, so ``get_chat``
answers what the real API would at that moment.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from chathooks.events import epoch
from tests.fakes.http_server import Request
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import fixture, wait_for
from tests.integration import rabbitmq
from tests.integration.beat import start_beat
from tests.integration.conversation import Conversation, Step
from tests.integration.processes import Process, start_web, start_worker

NUDGE = "Thanks for waiting, an agent will be with you in a moment."
GOOD = "Thank you! Would you mind reviewing us?"
BAD = "We're sorry. What could we have done better?"
BAD_TAG = "bad-rating"
MEMBER_TAGS = ["livechat"]
TAGGING = [
    {"tag": "refund", "keywords": ["refund", "money back"]},
    {"tag": "order-status", "pattern": r"\border\s*#?\d+"},
    {"tag": "urgent", "keywords": ["urgent", "asap"], "author": "customer"},
    {"tag": "canned-apology", "keywords": ["we apologise for the inconvenience"], "author": "agent"},
    # Never matched: only our bot says "support team"; only the agent says "delivery".
    {"tag": "escalation", "keywords": ["support team"]},
    {"tag": "shipping", "keywords": ["delivery", "shipping"], "author": "customer"},
]
EXPECTED_TAGS = {"refund", "order-status", "urgent", "canned-apology", BAD_TAG}

# What the customer, the bot and the agent say (the bot greeting is a bot's, so it tags nothing).
OPENING = "Hi, I want a refund for order #1042"
GREETING = "Thanks, Jane! I'm passing order #1042 to our support team. An agent will be with you shortly."
FOLLOW_UP = "Is there any update? It's urgent."
IMPATIENT = "Hello?? I just want my money back."
APOLOGY = "We apologise for the inconvenience, I'm checking the delivery status now."

READS = {"get_chat", "list_routing_statuses", "issue_bot_token"}  # never side effects
LIVECHAT_WRITES = {"tag_thread", "send_event"}
# Deterministic; CHATHOOKS_TEST_SHUFFLE_SEED tries another order.
SHUFFLE_SEED = int(os.environ.get("CHATHOOKS_TEST_SHUFFLE_SEED", "20250901"))
QUIET = 1.5  # seconds with nothing more arriving before the exact counts are asserted


def write_rules(path: Path, after_seconds: int) -> Path:
    rules = {
        "tagging": TAGGING,
        "nudge": {"after_seconds": after_seconds, "message": NUDGE},
        "rating": {"good": GOOD, "bad": BAD, "bad_tag": BAD_TAG},
        "marketing": {"status_if_new": "subscribed", "tags": MEMBER_TAGS},
    }
    path.write_text(json.dumps(rules, indent=2))
    return path


def automation_env(pipeline_env: dict[str, str], lc: FakeLiveChat, mc: FakeMailchimp, rules: Path) -> dict[str, str]:
    env = {
        **pipeline_env,
        "CHATHOOKS_RULES": str(rules),
        "CHATHOOKS_DRY_RUN": "0",
        "LIVECHAT_API_URL": lc.url,
        "LIVECHAT_API_VERSION": lc.api_version,
        "LIVECHAT_ACCOUNT_ID": lc.account_id,
        "LIVECHAT_PAT": lc.pat,
        "LIVECHAT_ACCESS_TOKEN": "",
        "LIVECHAT_BOT_ID": lc.bot_id,
        # v3.5 authors bot messages with X-Author-Id: it must not need the v3.6 bot-token settings.
        "LIVECHAT_BOT_SECRET": lc.bot_secret if lc.api_version == "3.6" else "",
        "LIVECHAT_CLIENT_ID": lc.client_id if lc.api_version == "3.6" else "",
        "LIVECHAT_ORGANIZATION_ID": lc.organization_id if lc.api_version == "3.6" else "",
        "MAILCHIMP_API_KEY": mc.api_key,
        "MAILCHIMP_LIST_ID": mc.list_id,
        "MAILCHIMP_API_URL": mc.api_url,
    }
    return env


@contextmanager
def launched(request: Any) -> Iterator[tuple[list[System], list[Any]]]:
    """Lists for the systems and fakes a test launches: afterwards the systems' logs are printed if the
    test failed, and the fakes stopped."""
    systems: list[System] = []
    fakes: list[Any] = []
    failed_before = request.session.testsfailed
    try:
        yield systems, fakes
    finally:
        if request.session.testsfailed > failed_before:
            for system in systems:
                print(system.logs())
        for fake in fakes:
            fake.stop()


class System:
    """The running pipeline: ingress URL, processes, and a client on its Redis."""

    def __init__(self, env: dict[str, str], tmp_path: Path, processes: list[Process]) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.processes = processes
        # The ingress first, alone: start_web's probe gives up on a /healthz slower than 1 s, which a
        # gunicorn still importing the app on a busy 2-core machine can be. Then worker and beat at once.
        self.web, self.url = start_web(env, tmp_path)
        processes.append(self.web)
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(start_worker, env, tmp_path), pool.submit(start_beat, env, tmp_path)]
        processes.extend(f.result() for f in futures if f.exception() is None)  # stopped at teardown
        for f in futures:
            if f.exception() is not None:
                raise f.exception()
        self.worker, self.beat = (f.result() for f in futures)
        self.redis = redis.Redis.from_url(env["REDIS_URL"])
        self.prefix = env["CHATHOOKS_KEY_PREFIX"]
        self.amqp = env.get("CELERY_BROKER_URL", "").startswith("amqp")
        self.http = requests.Session()

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"{self.url}/webhooks/livechat", json=body, timeout=10)
        assert response.status_code == 200, (body["action"], response.status_code, response.text)
        return response.json()

    def schedule(self) -> list[tuple[str, float]]:
        return [(m.decode(), s) for m, s in self.redis.zrange(f"{self.prefix}schedule", 0, -1, withscores=True)]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.redis.hvals(f"{self.prefix}dlq:items")]

    def in_flight(self) -> int:
        """Our tasks a worker has taken and not yet acknowledged (late acks), beat's ticks aside.

        kombu's Redis transport keeps them in its ``unacked`` hash as ``[message, exchange, routing_key]``.
        RabbitMQ tells no client what is unacknowledged: there it is what was queued and not yet processed
        (or dead-lettered as poison).
        """
        if self.amqp:
            counts = {k.decode(): int(v) for k, v in self.redis.hgetall(f"{self.prefix}metrics").items()}
            total = lambda name: sum(v for k, v in counts.items() if k.startswith(f"{name}:"))  # noqa: E731
            return total("queued") - total("processed") - total("poisoned")
        queues = {self.env["CHATHOOKS_QUEUE"], f"{self.env['CHATHOOKS_QUEUE']}.scheduled"}
        busy = 0
        for raw in self.redis.hvals("unacked"):
            message, _, routing_key = json.loads(raw)
            busy += routing_key in queues and message["headers"].get("task") != "chathooks.tick"
        return busy

    def waiting(self) -> int:
        """Messages queued that no worker has taken yet (on RabbitMQ a waiting tick counts too)."""
        if self.amqp:
            return sum(rabbitmq.ready(self.env["CHATHOOKS_QUEUE"]).values())
        return self.redis.llen(self.env["CHATHOOKS_QUEUE"])

    def idle(self) -> bool:
        """Nothing queued, running, or scheduled (timers and retries)."""
        return self.waiting() == 0 and not self.in_flight() and not self.schedule()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the pipeline is idle and stays so for a quiet spell (retries included)."""
        give_up = time.monotonic() + timeout
        while True:
            wait_for(self.idle, timeout=max(give_up - time.monotonic(), 0.1),
                     what=f"the pipeline to go idle (schedule: {self.schedule()})")
            time.sleep(QUIET)
            if self.idle():
                return

    def logs(self) -> str:
        return "\n".join(f"----- {p.name}\n{p.log()[-6000:]}" for p in self.processes)


def happen(system: System, lc: FakeLiveChat, conv: Conversation, step: Step) -> None:
    """LiveChat's state changes first, then its webhook arrives at the ingress and is queued."""
    if conv.created_at is not None:
        mirror(lc, conv, step)
    status = system.post(step.body)["status"]
    assert status == "queued", (step.what, status)


def mirror(lc: FakeLiveChat, conv: Conversation, step: Step) -> None:
    """Apply a step's change to FakeLiveChat's copy of the chat (created at the chat's start)."""
    with lc.lock:
        chat = lc.chats.get(conv.chat_id)
        if chat is None:
            lc.chats[conv.chat_id] = chat = conv.chat()
        if step.user is not None and all(u["id"] != step.user["id"] for u in chat["users"]):
            chat["users"].append(dict(step.user))
            chat["thread"]["user_ids"].append(step.user["id"])
        events = chat["thread"]["events"]
        if step.event is not None and all(e["id"] != step.event["id"] for e in events):
            events.append(dict(step.event))
        if step.ends_chat:
            chat["thread"]["active"] = False


# --- what was sent ---------------------------------------------------------------------------


def bot_messages(lc: FakeLiveChat, conv: Conversation) -> list[dict[str, Any]]:
    """Events in the fake's copy of the thread that our bot posted through the API."""
    with lc.lock:
        events = list(lc.chats[conv.chat_id]["thread"]["events"])
    return [e for e in events if e.get("author_id") == lc.bot_id and e.get("custom_id")]


def sends(lc: FakeLiveChat, text: str | None = None) -> list[Request]:
    return [r for r in lc.calls("send_event") if text is None or r.json["event"].get("text") == text]


def start_silence(system: System, lc: FakeLiveChat, conv: Conversation, after: int) -> float:
    """The bot is accepting; the chat starts with a customer message now. Returns the nudge's deadline."""
    happen(system, lc, conv, conv.routing_status("accepting_chats"))
    happen(system, lc, conv, conv.start(time.time(), OPENING))
    return epoch(conv.events[1]["created_at"]) + after


# --- the ingress alone ----------------------------------------------------------------------


def message(chat: int, n: int) -> dict:
    body = copy.deepcopy(fixture("incoming_event"))
    body["payload"]["chat_id"] = f"CHAT{chat:04d}"
    body["payload"]["event"]["id"] = f"CHAT{chat:04d}_T_{n}"
    body["payload"]["event"]["text"] = f"message {n} in chat {chat}"
    return body


def events_of(client: redis.Redis, timeline: str | bytes) -> list[dict[str, Any]]:
    """The events a chat's timeline holds (beside its deliveries, handler runs and effects: workers.journal)."""
    return [e for e in (json.loads(m) for m in client.zrange(timeline, 0, -1)) if "type" not in e]


def recorded(client: redis.Redis, prefix: str) -> int:
    """Events recorded in every timeline under ``prefix``."""
    return sum(len(events_of(client, k)) for k in client.scan_iter(f"{prefix}timeline:*"))


def metric(url: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=5).text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise KeyError(name)
