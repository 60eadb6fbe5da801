"""Secrets stay secret: a whole run of the pipeline, then a grep of everything it left behind.

Web, worker and beat run with distinctive secrets (the webhook secrets, LiveChat's PAT and bot
secret, the Mailchimp key, the ingress and Flower Basic-auth passwords). The run includes
rejected requests (wrong secret, secret in a header, Basic auth missing or wrong), LiveChat v2
webhooks with their API ``token`` (queued, invalid, unauthenticated), ChatBot calls with their token in
the query string (which the access log prints), LHC calls with their Bearer secret and LHC's REST API
echoing chathooks' key in an error, a transient
LiveChat failure (a retry waits in the scheduler) and a permanent Mailchimp one (a dead letter),
with the fakes' error messages echoing the credentials back, as careless APIs do. Then none of
those strings, nor the bot tokens issued, nor their base64 forms (Basic credentials, Celery's
base64 message bodies), may appear in: the processes' logs, any key name or value under the
test's prefix (queue messages while a worker is paused, scheduler jobs, dead letters, metrics,
chat state), the broker's in-flight messages, the Redis AOF (when the server runs on this
machine), ``/metrics``, the ``dlq show`` output, or any answer of the ingress.

The one place a secret lives by design: the bot-token cache, so that every worker shares one
24 h bot token (README, "Bot status"). It is checked to hold nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.fakes.lhc import FakeLhc
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import fixture, wait_for
from tests.integration.conversation import Conversation, Step
from tests.integration.processes import Process
from tests.integration.system import APOLOGY, OPENING, System, automation_env, happen, write_rules

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec-Kx7c4n4ry-current"
OLD_WEBHOOK_SECRET = "whsec-Qm2c4n4ry-rotated"  # still accepted during a rotation
PAT = "pat-Zt5c4n4ry-agent"
BOT_SECRET = "botsec-Hw1c4n4ry"
MAILCHIMP_KEY = "c4n4ry9f8e7d6c5b4a39f8e7d6c5b4a3-us21"
INGRESS_USER, INGRESS_PASSWORD = "hooks", "basic-Pq4c4n4ry"
FLOWER_PASSWORD = "flower-Lm6c4n4ry"
# What callers send that is wrong is no business of the logs either.
GUESSED_SECRET = "whsec-Aa1c4n4ry-guess"
GUESSED_PASSWORD = "basic-Tt6c4n4ry-guess"
V2_TOKEN = "v2tok-Jc9c4n4ry-api"  # a LiveChat API credential in every v2 webhook body
CHATBOT_TOKEN = "cbtok-Rv3c4n4ry"  # ChatBot.com's, in the query string of every call
GUESSED_CHATBOT_TOKEN = "cbtok-Gg8c4n4ry-guess"
LHC_SECRET = "lhcsec-Wb5c4n4ry"  # the Bearer token LHC's Rest API calls carry
GUESSED_LHC_SECRET = "lhcsec-Nn2c4n4ry-guess"
LHC_KEY = "lhckey-Ty7c4n4ry"  # chathooks' key to LHC's REST API

SECRETS = {
    "webhook secret": WEBHOOK_SECRET,
    "rotated webhook secret": OLD_WEBHOOK_SECRET,
    "LiveChat PAT": PAT,
    "LiveChat bot secret": BOT_SECRET,
    "Mailchimp API key": MAILCHIMP_KEY,
    "ingress Basic password": INGRESS_PASSWORD,
    "Flower Basic password": FLOWER_PASSWORD,
    "guessed webhook secret": GUESSED_SECRET,
    "guessed Basic password": GUESSED_PASSWORD,
    "LiveChat v2 token": V2_TOKEN,
    "ChatBot token": CHATBOT_TOKEN,
    "guessed ChatBot token": GUESSED_CHATBOT_TOKEN,
    "LHC webhook secret": LHC_SECRET,
    "guessed LHC secret": GUESSED_LHC_SECRET,
    "LHC API key": LHC_KEY,
}


def base64_forms(secret: str) -> set[str]:
    """The base64 text that ``secret`` becomes wherever it sits in an encoded byte string.

    For each of the three alignments, only the characters that depend on the secret's bytes
    alone: so a Basic credential (``user:secret``) or a Celery message body holding it matches.
    """
    raw, forms = secret.encode(), set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        first, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
        forms.add(encoded[first:end])
    return forms


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def findings(haystacks: dict[str, str], banned: dict[str, str]) -> list[str]:
    """``"<where>: <which secret>"`` for each banned string, plain or base64, found in a haystack."""
    found = []
    for where, text in haystacks.items():
        for label, secret in banned.items():
            if secret in text:
                found.append(f"{where}: {label}")
            elif any(form in text for form in base64_forms(secret)):
                found.append(f"{where}: {label} (base64)")
    return found


# --- what the pipeline left in Redis -----------------------------------------------------------


def celery_bodies(raw: str) -> str:
    """A kombu Redis message (or an ``unacked`` entry holding one) with its base64 body decoded."""
    try:
        message = json.loads(raw)
    except ValueError:
        return ""
    if isinstance(message, list) and message:  # unacked: [message, exchange, routing key]
        message = message[0]
    if not isinstance(message, dict) or not isinstance(message.get("body"), str):
        return ""
    try:
        return base64.b64decode(message["body"]).decode(errors="replace")
    except ValueError:
        return ""


def dump_key(client: redis.Redis, key: bytes) -> str:
    kind = client.type(key).decode()
    if kind == "string":
        values = [client.get(key)]
    elif kind == "hash":
        values = [part for pair in client.hgetall(key).items() for part in pair]
    elif kind == "list":
        values = client.lrange(key, 0, -1)
    elif kind == "set":
        values = list(client.smembers(key))
    elif kind == "zset":
        values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
    else:
        values = []
    texts = [v.decode(errors="replace") for v in values if v is not None]
    return "\n".join([key.decode(errors="replace"), *texts, *map(celery_bodies, texts)])


def redis_dump(system: System) -> dict[str, str]:
    """Every key under the test's prefix (name and value), and the broker's in-flight messages of its queues."""
    client, prefix = system.redis, system.prefix
    dump = {f"redis {k.decode()}": dump_key(client, k) for k in client.scan_iter(f"{prefix}*")}
    queues = {system.env["CHATHOOKS_QUEUE"], f"{system.env['CHATHOOKS_QUEUE']}.scheduled"}
    for tag, raw in client.hgetall("unacked").items():
        entry = raw.decode(errors="replace")
        if json.loads(entry)[2] in queues:
            dump[f"redis unacked {tag.decode()}"] = entry + "\n" + celery_bodies(entry)
    return dump


def aof(client: redis.Redis) -> dict[str, str]:
    """The server's append-only file(s), when the server runs on this machine (the embedded one)."""
    directory = Path(client.config_get("dir")["dir"])
    files = sorted(p for p in directory.rglob("appendonly*") if p.is_file()) if directory.is_dir() else []
    return {f"AOF {p.name}": p.read_bytes().decode(errors="replace") for p in files}


# --- the run -----------------------------------------------------------------------------------


@pytest.fixture
def fakes() -> Iterator[tuple[FakeLiveChat, FakeMailchimp, FakeLhc]]:
    lc = FakeLiveChat(api_version="3.6", pat=PAT, bot_secret=BOT_SECRET).start()
    mc = FakeMailchimp(api_key=MAILCHIMP_KEY).start()
    lhc = FakeLhc(api_key=LHC_KEY).start()
    yield lc, mc, lhc
    lc.stop()
    mc.stop()
    lhc.stop()


@pytest.fixture
def system(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
           fakes: tuple[FakeLiveChat, FakeMailchimp, FakeLhc]) -> System:
    lc, mc, lhc = fakes
    env = automation_env(pipeline_env, lc, mc, write_rules(tmp_path / "rules.json", after_seconds=300))
    api = lhc.settings()
    env.update({
        "LHC_WEBHOOK_SECRETS": LHC_SECRET, "LHC_API_URL": api.api_url, "LHC_API_USER": api.api_user,
        "LHC_API_KEY": LHC_KEY,
        "LIVECHAT_WEBHOOK_SECRETS": f"{WEBHOOK_SECRET},{OLD_WEBHOOK_SECRET}",
        "INGRESS_BASIC_AUTH": f"{INGRESS_USER}:{INGRESS_PASSWORD}",
        "FLOWER_BASIC_AUTH": f"ops:{FLOWER_PASSWORD}",
        "CHATBOT_WEBHOOK_TOKENS": CHATBOT_TOKEN,
        "GUNICORN_CMD_ARGS": "--access-logfile -",  # as the Procfile runs it
    })
    system = System(env, tmp_path, processes)
    system.http.auth = (INGRESS_USER, INGRESS_PASSWORD)
    return system


def signed(step: Step, secret: str = WEBHOOK_SECRET) -> Step:
    step.body["secret_key"] = secret
    return step


def rejected_requests(url: str, conv: Conversation) -> list[requests.Response]:
    """Requests the ingress must turn away, each answered 401."""
    endpoint = f"{url}/webhooks/livechat"
    body = signed(conv.routing_status("accepting_chats")).body
    wrong = {**body, "secret_key": GUESSED_SECRET}
    no_secret = {k: v for k, v in body.items() if k != "secret_key"}
    good_auth = (INGRESS_USER, INGRESS_PASSWORD)
    attempts = [
        requests.post(endpoint, json=body, timeout=10),  # no Basic auth
        requests.post(endpoint, json=body, auth=(INGRESS_USER, GUESSED_PASSWORD), timeout=10),
        requests.post(endpoint, json=body, auth=("admin", INGRESS_PASSWORD), timeout=10),
        requests.post(endpoint, json=body, headers={"Authorization": f"Basic {basic(INGRESS_USER, GUESSED_PASSWORD)}"},
                      timeout=10),
        requests.post(endpoint, json=wrong, auth=good_auth, timeout=10),
        requests.post(endpoint, json=no_secret, auth=good_auth, headers={"X-Secret-Key": GUESSED_SECRET}, timeout=10),
    ]
    assert [r.status_code for r in attempts] == [401] * len(attempts), [r.text for r in attempts]
    return attempts


def v2_requests(system: System, lc: FakeLiveChat) -> list[requests.Response]:
    """v2 webhooks carrying their token: two queued, one rejected as invalid, one without Basic auth."""
    chat = fixture("chat_ended", "livechat_v2")["chat"]["id"]
    lc.seed_chat({"id": chat, "thread": {"id": f"{chat}_T1", "active": False}})
    endpoint = f"{system.url}/webhooks/livechat/v2"
    started, ended = ({**fixture(name, "livechat_v2"), "token": V2_TOKEN} for name in ("chat_started", "chat_ended"))
    attempts = [
        system.http.post(endpoint, json=started, timeout=10),
        system.http.post(endpoint, json=ended, timeout=10),
        system.http.post(endpoint, json={**ended, "license_id": None}, timeout=10),
        requests.post(endpoint, json=started, timeout=10),
    ]
    assert [r.status_code for r in attempts] == [200, 200, 400, 401], [r.text for r in attempts]
    return attempts


def chatbot_requests(system: System) -> list[requests.Response]:
    """ChatBot calls with the token in the query string (the access log prints it): verified, answered, refused."""
    endpoint = f"{system.url}/webhooks/chatbot"
    attempts = [
        requests.get(endpoint, params={"challenge": "c4", "token": CHATBOT_TOKEN}, timeout=10),
        requests.post(endpoint, params={"token": CHATBOT_TOKEN}, json=fixture("webhook_block", "chatbot"), timeout=10),
        requests.post(endpoint, params={"token": CHATBOT_TOKEN}, json={"node": {}}, timeout=10),
        requests.post(endpoint, params={"token": GUESSED_CHATBOT_TOKEN}, json=fixture("webhook_block", "chatbot"),
                      timeout=10),
    ]
    assert [r.status_code for r in attempts] == [200, 200, 400, 401], [r.text for r in attempts]
    return attempts


def lhc_requests(system: System, lhc: FakeLhc) -> list[requests.Response]:
    """LHC calls with the Bearer secret (queued, refused, invalid), and its REST API echoing chathooks' key
    in an error, once, while the chat's end is reconciled (so a retry waits in the scheduler with it)."""
    lhc.seed_chat({"id": 5388, "status": 2, "iwh_id": 0})
    lhc.fail_next("fetchchatmessages", status=500, body={"error": True, "r": f"key {LHC_KEY} rejected (Basic "
                                                                             f"{basic(lhc.user, LHC_KEY)})"})
    endpoint = f"{system.url}/webhooks/lhc"
    auth = {"Authorization": f"Bearer {LHC_SECRET}"}
    attempts = [
        requests.post(endpoint, json=fixture("chat_chat_started", "lhc"), headers=auth, timeout=10),
        requests.post(endpoint, json=fixture("chat_close", "lhc"), headers=auth, timeout=10),
        requests.post(endpoint, json={"chat": {}}, headers=auth, timeout=10),
        requests.post(endpoint, json=fixture("chat_close", "lhc"),
                      headers={"Authorization": f"Bearer {GUESSED_LHC_SECRET}"}, timeout=10),
    ]
    assert [r.status_code for r in attempts] == [204, 204, 400, 401], [r.text for r in attempts]
    return attempts


def answers(responses: list[requests.Response]) -> dict[str, str]:
    return {f"ingress answer {n} ({r.status_code})": f"{r.headers}\n{r.text}" for n, r in enumerate(responses)}


def test_no_secret_in_logs_queue_scheduler_dead_letters_metrics_or_answers(system, fakes):
    lc, mc, lhc = fakes
    probe = Conversation("3.6")
    responses = rejected_requests(system.url, probe)
    # A 400 for a valid secret with a broken payload must not echo the body back either.
    broken = {**signed(probe.customer_says("hello?", time.time())).body, "payload": {"chat_id": probe.chat_id}}
    responses.append(system.http.post(f"{system.url}/webhooks/livechat", json=broken, timeout=10))
    assert responses[-1].status_code == 400

    # Upstream errors that echo credentials: a permanent one from Mailchimp (dead letters), and
    # transient ones from LiveChat (a retry waits in the scheduler, as long as Retry-After says).
    mc.fail_next("member", status=401, times=100,
                 detail=f"API key {MAILCHIMP_KEY} rejected (Authorization: Basic {basic('chathooks', MAILCHIMP_KEY)})")
    lc.fail_next("issue_bot_token", error_type="service_unavailable", message=f"bot secret {BOT_SECRET} not ready")
    lc.fail_next("tag_thread", error_type="too_many_requests", retry_after=5, message=f"slow down, {PAT}")

    conv = Conversation("3.6", customer_email="jane.c4n4ry@example.org")
    happen(system, lc, conv, signed(conv.routing_status("accepting_chats"), OLD_WEBHOOK_SECRET))
    # The worker paused: the queue holds the messages, to be searched as they wait.
    system.worker.signal(signal.SIGSTOP)
    try:
        happen(system, lc, conv, signed(conv.start(time.time(), OPENING)))
        happen(system, lc, conv, signed(conv.agent_joins(time.time())))
        happen(system, lc, conv, signed(conv.agent_says(APOLOGY, time.time())))
        responses += v2_requests(system, lc)
        responses += chatbot_requests(system)
        responses += lhc_requests(system, lhc)
        wait_for(lambda: system.redis.llen(system.env["CHATHOOKS_QUEUE"]) >= 2, timeout=10, what="messages queued")
        snapshots = [redis_dump(system)]
    finally:
        system.worker.signal(signal.SIGCONT)
    # The chat's id is only inside the queued messages' base64 bodies yet: they were decoded.
    assert conv.chat_id in "\n".join(snapshots[0].values())
    assert "PJ0MRSHTDG" in "\n".join(snapshots[0].values()), "the v2 deliveries were queued and searched"
    # The bad rating: its reply needs a bot token (refused once), its tag is rate-limited once.
    for step in conv.rated(0, time.time()):
        happen(system, lc, conv, signed(step))
    wait_for(lambda: any(m.startswith("retry|") for m, _ in system.schedule()), timeout=15,
             what="a retry in the scheduler")
    snapshots.append(redis_dump(system))
    wait_for(lambda: lc.calls("send_event") and len(lc.calls("tag_thread")) >= 2, timeout=30,
             what="the rating reply and tag, retried")
    happen(system, lc, conv, signed(conv.deactivated()))
    system.settle(timeout=40)
    snapshots.append(redis_dump(system))

    dead = system.dead_letters()
    assert dead and all(d["handler"] == "marketing.sync" and d["errors"][-1]["type"] == "authentication" for d in dead)
    metrics = requests.get(f"{system.url}/metrics", timeout=10)
    assert f"chathooks_dead_letters {len(dead)}.0" in metrics.text
    dlq_show = subprocess.run([sys.executable, "-m", "cli", "dlq", "show", "--json", dead[0]["id"]],
                              env={**os.environ, **system.env}, capture_output=True, text=True, timeout=60)
    assert dlq_show.returncode == 0 and dead[0]["id"] in dlq_show.stdout, dlq_show.stderr
    for proc in system.processes:  # flushed and complete, shutdown lines included
        proc.stop()

    with lc.lock:
        bot_tokens = {f"bot token {n}": token for n, token in enumerate(lc.bot_tokens)}
    assert bot_tokens, "no bot token was issued: the run did not exercise v3.6 bot authorship"
    haystacks = {
        **{f"log {p.name}": p.log() for p in system.processes},
        **{f"{where} (snapshot {n})": text for n, snapshot in enumerate(snapshots) for where, text in snapshot.items()},
        **aof(system.redis),
        "/metrics": metrics.text,
        "dlq show": dlq_show.stdout + dlq_show.stderr,
        **answers(responses),
    }
    assert "/webhooks/chatbot?token=***" in system.web.log(), "the access log printed the calls, redacted"
    allowed = {w for w in haystacks if w.startswith("AOF") or is_token_cache(w, system.prefix, lc.bot_id)}
    leaks = findings({w: t for w, t in haystacks.items() if w not in allowed}, SECRETS | bot_tokens)
    leaks += findings({w: t for w, t in haystacks.items() if w in allowed}, SECRETS)
    assert not leaks, "secrets found:\n" + "\n".join(leaks)


def is_token_cache(where: str, prefix: str, bot_id: str) -> bool:
    """The bot-token cache's key (under the prefix, named after the bot), where the token belongs."""
    return where.startswith(f"redis {prefix}") and f"bot_token:{bot_id} " in where
