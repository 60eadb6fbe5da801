"""End to end: a whole LiveChat conversation through the real ingress, Redis, Celery worker and beat.

Real gunicorn, a real Celery worker and beat, the real Redis of ``pipeline_env``; FakeLiveChat and
FakeMailchimp run in this process on loopback and record every call the automations make.
The conversation (tests/integration/conversation.py) is mirrored into FakeLiveChat as it
happens — events stored, the agent joining, the chat ending — before each webhook is posted,
so ``get_chat`` answers what the real API would at that moment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from chathooks.events import epoch
from tests.fakes.http_server import Request
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import wait_for
from tests.integration.beat import start_beat
from tests.integration.conversation import BOT_ID, Conversation, Step
from tests.integration.processes import Process, start_web, start_worker

pytestmark = pytest.mark.integration

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


# --- the world: fakes, rules, processes ------------------------------------------------------


@pytest.fixture
def mailchimp() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as fake:
        yield fake


@pytest.fixture
def launch(request: pytest.FixtureRequest, pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
           mailchimp: FakeMailchimp) -> Iterator[Callable[[str, int], tuple[System, FakeLiveChat]]]:
    """``launch(version, after_seconds)``: FakeLiveChat, a rules file, and the pipeline's processes.

    Everything started is stopped at teardown; the processes' logs are printed if the test failed.
    """
    fakes: list[FakeLiveChat] = []
    systems: list[System] = []
    failed_before = request.session.testsfailed

    def launch(version: str, after_seconds: int) -> tuple[System, FakeLiveChat]:
        lc = FakeLiveChat(api_version=version).start()
        fakes.append(lc)
        assert lc.bot_id == BOT_ID, "the fixtures' bot is FakeLiveChat's bot"
        rules = write_rules(tmp_path / "rules.json", after_seconds)
        system = System(automation_env(pipeline_env, lc, mailchimp, rules), tmp_path, processes)
        systems.append(system)
        return system, lc

    yield launch
    if request.session.testsfailed > failed_before:
        for system in systems:
            print(system.logs())
    for lc in fakes:
        lc.stop()


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
        """
        queues = {self.env["CHATHOOKS_QUEUE"], f"{self.env['CHATHOOKS_QUEUE']}.scheduled"}
        busy = 0
        for raw in self.redis.hvals("unacked"):
            message, _, routing_key = json.loads(raw)
            busy += routing_key in queues and message["headers"].get("task") != "chathooks.tick"
        return busy

    def idle(self) -> bool:
        """Nothing queued, running, or scheduled (timers and retries)."""
        return self.redis.llen(self.env["CHATHOOKS_QUEUE"]) == 0 and not self.in_flight() and not self.schedule()

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


def call_line(service: str, call: str, payload: Any) -> str:
    return f"{service} {call} {json.dumps(payload, sort_keys=True)}"


def signature(lc: FakeLiveChat, mc: FakeMailchimp, conv: Conversation) -> list[str]:
    """Every side effect sent outside, one canonical line each (the chat's ids made symbolic), sorted."""
    lines = []
    for r in lc.calls():
        if r.route in READS:
            continue
        params = dict(r.json or {})
        if r.route == "send_event":  # custom_id is ours to choose (it names the once-guard)
            params["event"] = {k: v for k, v in params["event"].items() if k != "custom_id"}
        lines.append(call_line("livechat", r.route, params))
    lines += [call_line("mailchimp", f"{r.method} {r.path}", r.json) for r in mc.calls()]
    return sorted(line.replace(conv.chat_id, "<chat>").replace(conv.thread_id, "<thread>") for line in lines)


def expected_signature(conv: Conversation, mc: FakeMailchimp, nudge: bool) -> list[str]:
    """The conversation's outbound calls: each tag once, one list upsert (+ member tags), one reply per rating."""
    member = f"/3.0/lists/{mc.list_id}/members/{hashlib.md5(conv.customer_email.lower().encode()).hexdigest()}"
    first, last = conv.customer_name.split()
    lines = [call_line("livechat", "tag_thread", {"chat_id": "<chat>", "thread_id": "<thread>", "tag": tag})
             for tag in EXPECTED_TAGS]
    lines += [call_line("livechat", "send_event",
                        {"chat_id": "<chat>", "event": {"type": "message", "text": text, "visibility": "all"}})
              for text in [BAD] + ([NUDGE] if nudge else [])]
    lines.append(call_line("mailchimp", f"PUT {member}", {
        "email_address": conv.customer_email, "status_if_new": "subscribed",
        "merge_fields": {"FNAME": first, "LNAME": last}}))
    lines.append(call_line("mailchimp", f"POST {member}/tags",
                           {"tags": [{"name": t, "status": "active"} for t in MEMBER_TAGS]}))
    return sorted(lines)


def assert_outcome(system: System, lc: FakeLiveChat, mc: FakeMailchimp, conv: Conversation, nudge: bool) -> None:
    """The exact outbound calls, and LiveChat's and Mailchimp's resulting state."""
    assert not lc.errors and not mc.errors, (lc.errors, mc.errors)
    assert system.dead_letters() == [], system.dead_letters()
    unexpected = {r.route for r in lc.calls()} - READS - LIVECHAT_WRITES
    assert not unexpected, f"unexpected LiveChat calls: {unexpected}"
    assert signature(lc, mc, conv) == expected_signature(conv, mc, nudge)

    # Each tag_thread exactly once, as the agent (PAT), never as the bot.
    tag_calls = lc.calls("tag_thread")
    assert Counter(r.json["tag"] for r in tag_calls) == Counter(EXPECTED_TAGS)
    for r in tag_calls:
        assert r.headers["Authorization"] == agent_auth(lc) and "X-Author-Id" not in r.headers
    with lc.lock:
        assert sorted(lc.chats[conv.chat_id]["thread"]["tags"]) == sorted(EXPECTED_TAGS)

    # Every bot message reached the thread, authored by the bot.
    texts = [BAD] + ([NUDGE] if nudge else [])
    assert sorted(e["text"] for e in bot_messages(lc, conv)) == sorted(texts)
    for r in sends(lc):
        assert_authored_by_bot(lc, r)
    if lc.api_version == "3.5":
        assert not lc.calls("issue_bot_token")

    # One list member, with the name split into the merge fields and the member tags.
    members = mc.members()
    assert list(members) == [conv.customer_email.lower()]
    member = members[conv.customer_email.lower()]
    assert member["status"] == "subscribed" and member["tags"] == MEMBER_TAGS
    assert member["merge_fields"] == {"FNAME": "Jane", "LNAME": "Roe"}
    assert len(mc.calls("member")) == 1 and len(mc.calls("tags")) == 1


def agent_auth(lc: FakeLiveChat) -> str:
    """The Authorization header of the configured agent's PAT."""
    return "Basic " + base64.b64encode(f"{lc.account_id}:{lc.pat}".encode()).decode()


def assert_authored_by_bot(lc: FakeLiveChat, r: Request) -> None:
    if lc.api_version == "3.5":
        assert r.headers.get("X-Author-Id") == lc.bot_id
        assert r.headers["Authorization"] == agent_auth(lc)
    else:
        assert "X-Author-Id" not in r.headers
        auth = r.headers["Authorization"]
        assert auth.startswith("Bearer ")
        with lc.lock:
            assert lc.bot_tokens.get(auth.removeprefix("Bearer ")) == lc.bot_id, "not a bot token of our bot"


def assert_nudged_in_time(lc: FakeLiveChat, deadline: float) -> Request:
    """Exactly one nudge, received no earlier than the deadline and no later than 2 s after it."""
    nudges = sends(lc, NUDGE)
    assert len(nudges) == 1, nudges
    at = nudges[0].time
    print(f"nudge sent {at - deadline:+.3f}s after its deadline")
    assert deadline <= at <= deadline + 2.0, f"nudge at deadline{at - deadline:+.3f}s"
    assert_authored_by_bot(lc, nudges[0])
    return nudges[0]


def posted_by_bot(lc: FakeLiveChat, conv: Conversation, text: str) -> dict[str, Any]:
    """The event our bot posted with ``text``, as LiveChat stored it (to send its incoming_event)."""
    found = [e for e in bot_messages(lc, conv) if e["text"] == text]
    assert len(found) == 1, found
    return found[0]


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.5", "3.6"])
def test_whole_conversation_tags_syncs_nudges_and_answers_the_rating_once(version, launch, mailchimp):
    after = 3
    system, lc = launch(version, after)
    conv = Conversation(version)

    def now_happens(step: Step) -> None:
        happen(system, lc, conv, step)

    now_happens(conv.routing_status("accepting_chats"))
    t0 = time.time()
    now_happens(conv.start(t0, OPENING))
    now_happens(conv.bot_says(GREETING, time.time()))
    time.sleep(0.3)
    now_happens(conv.customer_says(FOLLOW_UP, time.time()))

    # The silence clock started at the first customer message (the bot's greeting does not count).
    assert conv.events[1]["text"] == OPENING
    deadline = epoch(conv.events[1]["created_at"]) + after
    wait_for(lambda: mailchimp.calls("tags"), timeout=10, what="the list upsert")
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the nudge")
    nudge = assert_nudged_in_time(lc, deadline)

    # LiveChat reports the bot's own nudge; the customer writes again. The nudge is no agent reply,
    # so this is still the same silence window: no second nudge, even well past this message's
    # own "deadline" (which would be due if the bot's message had closed the window).
    wait_for(lambda: bot_messages(lc, conv), timeout=5, what="the nudge stored")
    now_happens(conv.from_api(posted_by_bot(lc, conv, NUDGE)))
    impatient = time.time()
    now_happens(conv.customer_says(IMPATIENT, impatient))
    now_happens(conv.agent_joins(time.time()))
    time.sleep(max(impatient + after + 1.5 - time.time(), 0))
    assert len(sends(lc, NUDGE)) == 1, "a second nudge in one silence window"
    now_happens(conv.agent_says(APOLOGY, time.time()))

    # The customer rates the chat bad: both signals arrive; one reply, one bad-rating tag.
    for step in conv.rated(0, time.time()):
        now_happens(step)
    wait_for(lambda: sends(lc, BAD) and [r for r in lc.calls("tag_thread") if r.json["tag"] == BAD_TAG],
             timeout=10, what="the rating reply and the bad-rating tag")
    wait_for(lambda: len(bot_messages(lc, conv)) == 2, timeout=5, what="the rating reply stored")
    now_happens(conv.from_api(posted_by_bot(lc, conv, BAD)))

    # The agent closes the chat: the matched tags are applied.
    now_happens(conv.deactivated())
    wait_for(lambda: len(lc.calls("tag_thread")) >= len(EXPECTED_TAGS), timeout=10, what="every tag applied")
    system.settle()

    assert_outcome(system, lc, mailchimp, conv, nudge=True)
    assert sends(lc, NUDGE) == [nudge]


@pytest.mark.parametrize("version", ["3.5", "3.6"])
def test_triplicated_shuffled_deliveries_make_the_same_outbound_calls(version, launch, mailchimp):
    """The conversation happened; LiveChat delivers every webhook 3 times, in a shuffled order.

    The nudge's timing is kept out: its rule's threshold (30 s) exceeds every silence in the
    conversation, so in event time no window reaches a deadline, whatever order the deliveries
    take. FakeLiveChat keeps the chat active until all deliveries are handled, so ``get_chat``
    answers the same whatever the order (whether a late rating is answered otherwise depends on
    when the chat really ended, which is a race, not ordering).
    """
    system, lc = launch(version, 30)
    conv = Conversation(version)
    t0 = time.time() - 10  # the same timeline as the real-time test, already over
    steps = [conv.routing_status("accepting_chats"), conv.start(t0, OPENING),
             conv.bot_says(GREETING, t0 + 0.2), conv.customer_says(FOLLOW_UP, t0 + 0.6),
             conv.customer_says(IMPATIENT, t0 + 4.0), conv.agent_joins(t0 + 4.3),
             conv.agent_says(APOLOGY, t0 + 4.6), *conv.rated(0, t0 + 5.5)]
    lc.seed_chat(conv.chat())
    steps.append(conv.deactivated())

    deliveries = [step for step in steps for _ in range(3)]
    random.Random(SHUFFLE_SEED).shuffle(deliveries)
    assert [d.action for d in deliveries] != [s.action for s in steps for _ in range(3)]
    statuses: dict[str, list[str]] = {}
    for step in deliveries:
        statuses.setdefault(step.what, []).append(system.post(step.body)["status"])
    # The ingress queues each delivery once and answers its retries as duplicates.
    assert all(s == ["queued", "duplicate", "duplicate"] for s in statuses.values()), statuses
    wait_for(lambda: len(lc.calls("tag_thread")) >= len(EXPECTED_TAGS) and sends(lc, BAD),
             timeout=20, what="every tag and the rating reply")
    system.settle()
    assert_outcome(system, lc, mailchimp, conv, nudge=False)


def start_silence(system: System, lc: FakeLiveChat, conv: Conversation, after: int) -> float:
    """The bot is accepting; the chat starts with a customer message now. Returns the nudge's deadline."""
    happen(system, lc, conv, conv.routing_status("accepting_chats"))
    happen(system, lc, conv, conv.start(time.time(), OPENING))
    return epoch(conv.events[1]["created_at"]) + after


def test_nudge_fires_once_when_the_worker_restarts_before_the_deadline(launch, mailchimp, processes, tmp_path):
    after = 6
    system, lc = launch("3.6", after)
    conv = Conversation("3.6")
    deadline = start_silence(system, lc, conv, after)
    # The window is open (its deadline is in the scheduler) before the worker goes.
    wait_for(lambda: any(m.startswith("nudge|") for m, _ in system.schedule()), timeout=10, what="the nudge scheduled")
    assert [s for m, s in system.schedule() if m.startswith("nudge|")] == [pytest.approx(deadline, abs=1e-3)]

    system.worker.signal(signal.SIGTERM)
    system.worker.proc.wait(15)
    happen(system, lc, conv, conv.customer_says(FOLLOW_UP, time.time()))  # queued while no worker runs
    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    assert time.time() < deadline - 0.5, "the replacement worker took too long to start for this test"

    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the nudge")
    assert_nudged_in_time(lc, deadline)
    happen(system, lc, conv, conv.from_api(posted_by_bot(lc, conv, NUDGE)))
    time.sleep(1.5)  # another tick or two: still one nudge
    happen(system, lc, conv, conv.agent_joins(time.time()))
    happen(system, lc, conv, conv.agent_says(APOLOGY, time.time()))
    happen(system, lc, conv, conv.deactivated())
    wait_for(lambda: len(lc.calls("tag_thread")) >= 4, timeout=10, what="the tags")
    system.settle()
    assert sorted(r.json["tag"] for r in lc.calls("tag_thread")) == ["canned-apology", "order-status", "refund",
                                                                     "urgent"]
    assert len(sends(lc)) == 1 and len(bot_messages(lc, conv)) == 1
    assert len(mailchimp.calls("member")) == 1
    assert system.dead_letters() == []


def test_nudge_whose_send_fails_once_is_retried_with_backoff(launch):
    """A 503 on the nudge's send_event is transient: retried per the retry policy (first retry after 1-2 s)."""
    after = 3
    system, lc = launch("3.5", after)
    conv = Conversation("3.5")
    lc.fail_next("send_event", error_type="service_unavailable")
    deadline = start_silence(system, lc, conv, after)
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the first nudge attempt")
    first = sends(lc, NUDGE)[0]
    assert deadline <= first.time <= deadline + 2.0
    # Retry 2 waits 1-2 s (RetryPolicy), then up to a beat tick (1 s) to be picked up.
    wait_for(lambda: len(sends(lc, NUDGE)) >= 2, timeout=6, what="the nudge retried with backoff")
    assert sends(lc, NUDGE)[1].time - first.time <= 4.0
    system.settle()
    assert len(sends(lc, NUDGE)) == 2 and len(bot_messages(lc, conv)) == 1
    assert system.dead_letters() == []


def test_nudge_refused_for_good_is_dead_lettered_not_retried(launch):
    """``authorization`` is final (SPEC §6): one attempt, then the dead-letter store with the error."""
    after = 3
    system, lc = launch("3.5", after)
    conv = Conversation("3.5")
    lc.fail_next("send_event", error_type="authorization", times=100)
    deadline = start_silence(system, lc, conv, after)
    wait_for(lambda: sends(lc, NUDGE), timeout=deadline - time.time() + 6, what="the nudge attempt")
    wait_for(system.dead_letters, timeout=5, what="the nudge dead-lettered")
    system.settle()
    assert len(sends(lc, NUDGE)) == 1, "a final error was retried"
    [item] = system.dead_letters()
    assert item["errors"][-1]["type"] == "authorization"
    assert conv.chat_id in json.dumps(item) and conv.thread_id in json.dumps(item)
