"""``chathooks simulate``: drive a realistic LiveChat conversation through a running ingress.

The conversation exercises every automation: a chat with an email (list sync), customer
messages with keywords (tags), a silence past ``nudge.after_seconds`` (the conversation
is backdated, so nobody waits two minutes), an agent reply, a bad rating and the end of
the chat. Afterwards it prints what the workers did (recorded outbound actions).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import redis
import requests

from chathooks.events import rfc3339
from chathooks.keys import Keys
from chathooks.rules import load_rules
from chathooks.settings import Settings
from cli.runner import DEFAULT_REDIS_PORT, DEV_SECRET_FILE
from workers.outbound import Record

ORGANIZATION = "00000000-0000-4000-8000-00000000c4a7"
AGENT = "agent.smith@example.com"


def conversation(secret: str, after_seconds: int, bot_id: str | None, now: float) -> Iterator[tuple[float, dict]]:
    """(pause before sending, webhook body) for each step of one conversation."""
    chat, thread = "SIM" + secrets.token_hex(4).upper(), "SIMT" + secrets.token_hex(4).upper()
    customer = str(uuid.uuid4())
    email = f"jane.roe+{chat.lower()}@example.org"  # a new list member each run
    start = now - after_seconds - 10  # the customer has already waited past the nudge deadline

    def body(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"webhook_id": "simulated", "secret_key": secret, "action": action,
                "organization_id": ORGANIZATION, "payload": payload, "additional_data": {}}

    def event(n: int, author: str | None, at: float, **fields: Any) -> dict[str, Any]:
        ev = {"id": f"{thread}_{n}", "created_at": rfc3339(at, "microseconds"), "visibility": "all", **fields}
        return {**ev, "author_id": author} if author else ev

    if bot_id:
        yield 0, body("routing_status_set", {"agent_id": bot_id, "status": "accepting_chats"})
    users = [{"id": customer, "type": "customer", "name": "Jane Roe", "email": email}]
    first = event(2, customer, start + 1, type="message", text="Hi! I was charged twice for order #1042.")
    form = event(1, customer, start, type="filled_form", form_type="prechat", form_id="prechat",
                 fields=[{"type": "email", "id": "1", "label": "E-mail", "answer": email}])
    yield 0, body("incoming_chat", {"chat": {"id": chat, "users": users, "thread": {
        "id": thread, "active": True, "events": [form, first], "created_at": rfc3339(start, "microseconds")}}})
    yield 0.3, body("incoming_event", {"chat_id": chat, "thread_id": thread, "event": event(
        3, customer, start + 5, type="message", text="Can I get my money back today?")})
    # Silence: the customer's first message is older than nudge.after_seconds; the next tick nudges.
    yield 3.0, body("user_added_to_chat", {"chat_id": chat, "thread_id": thread, "reason": "manual",
                                           "user": {"id": AGENT, "type": "agent", "name": "Agent Smith"}})
    yield 0.3, body("incoming_event", {"chat_id": chat, "thread_id": thread, "event": event(
        4, AGENT, time.time(), type="message", text="We apologise for the inconvenience, refunding it now.")})
    yield 0.5, body("thread_properties_updated", {"chat_id": chat, "thread_id": thread,
                                                  "properties": {"rating": {"score": 0, "comment": "Slow"}}})
    yield 0, body("incoming_event", {"chat_id": chat, "thread_id": thread, "event": event(
        5, None, time.time(), type="system_message", system_message_type="rating.chat_rated",
        text="Jane Roe rated the chat as bad", text_vars={"customer": "Jane Roe", "score": "bad"})})
    yield 1.5, body("chat_deactivated", {"chat_id": chat, "thread_id": thread, "user_id": AGENT})


def run(url: str, out: TextIO, environ: Mapping[str, str] | None = None, var_dir: Path = Path("var")) -> int:
    env = dict(os.environ if environ is None else environ)
    # Unset REDIS_URL means the embedded Redis that `make run` starts.
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:{env.get('CHATHOOKS_REDIS_PORT') or DEFAULT_REDIS_PORT}/0")
    settings = Settings.from_env(env)
    secret = _webhook_secret(settings, var_dir)
    rules = load_rules(settings.rules_path)
    after = rules.nudge.after_seconds if rules.nudge else 0
    endpoint = url.rstrip("/") + "/webhooks/livechat"
    chat_id = None
    with requests.Session() as http:
        http.auth = settings.ingress_basic_auth
        for pause, body in conversation(secret, after, settings.livechat.bot_id, time.time()):
            time.sleep(pause)
            chat_id = chat_id or body["payload"].get("chat", {}).get("id")
            response = http.post(endpoint, json=body, timeout=10)
            print(f"→ {body['action']:<26} {response.status_code} {response.text.strip()}", file=out)
            if response.status_code != 200:
                return 1
    time.sleep(2.5)
    _report(settings, chat_id, out)
    return 0


def _webhook_secret(settings: Settings, var_dir: Path) -> str:
    if settings.webhook_secrets:
        return settings.webhook_secrets[0]
    stored = var_dir / DEV_SECRET_FILE
    if stored.exists():
        return stored.read_text().strip()
    raise SystemExit(f"chathooks simulate: no LIVECHAT_WEBHOOK_SECRETS and no {stored} "
                     "(start the system with `make run` first)")


def _report(settings: Settings, chat_id: str | None, out: TextIO) -> None:
    """Print the outbound actions the workers recorded for the simulated chat."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        records = Record(client, Keys(settings.key_prefix).outbound).entries()
    except redis.RedisError as exc:
        print(f"(cannot read what the workers did: {exc})", file=out)
        return
    print(f"\nWhat the workers did for chat {chat_id}:", file=out)
    mine = [r for r in records if r.get("chat_id") == chat_id or str(r.get("email", "")).endswith(
        f"+{(chat_id or '').lower()}@example.org")]
    for r in mine:
        detail = {k: v for k, v in r.items() if k not in ("action", "outcome", "at", "chat_id")}
        print(f"  {r['outcome']:<8} {r['action']:<16} {json.dumps(detail, sort_keys=True)}", file=out)
    if not mine:
        print("  nothing yet — are the worker and beat running?", file=out)
