"""LiveChat v3.6 webhook bodies for the benchmarks: one message template, and whole conversations."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.redis_target import SECRET

PLACEHOLDER = "%ID%"  # the load generator puts a unique token here, so every request is a new delivery


def run_token() -> str:
    """A run's part of the tokens: digits only, so a token is also a JSON number (LHC's message ids are
    integers); with a thread's 3 digits and a counter's 8, at most 17 digits, below 2**63."""
    return str(random.randint(100_000, 999_999))
ORGANIZATION = "7d1e0c3a-5b2f-4e8a-9c61-2f0b8a4d3e17"
AGENT = "9f3c1a7e0b2d4c6e8a1b3d5f7e9c0a2b"

# Customer and agent lines; several match the default tagging rules, as real chats would.
LINES = (
    ("customer", "Hi, I was charged twice for order #1042, can I get a refund?"),
    ("agent", "Sorry to hear that! Let me check the order for you."),
    ("customer", "Thanks. It was the blue jacket, size M."),
    ("agent", "We apologise for the inconvenience, the refund is on its way."),
    ("customer", "Great, how long does it take to show up?"),
    ("agent", "Usually three to five business days."),
)


def _envelope(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"webhook_id": "0f3b9c2e7d5a41c8b6e2f4a1d3c5b7e9", "secret_key": SECRET, "action": action,
            "organization_id": ORGANIZATION, "payload": payload, "additional_data": {}}


def _body(action: str, payload: dict[str, Any]) -> str:
    return json.dumps(_envelope(action, payload))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def message_template() -> str:
    """A customer's ``incoming_event`` message whose event id contains ``PLACEHOLDER``."""
    event = {"id": f"RX8QK2NB7C_{PLACEHOLDER}", "type": "message", "author_id": "0e6b2f1c-9a7d-4c3e-8b5a-1f2d3c4b5a69",
             "created_at": _iso(time.time()), "visibility": "all", "text": "Is there any update on my refund?"}
    body = _envelope("incoming_event", {"chat_id": "RX8QK2MZ1A", "thread_id": "RX8QK2NB7C", "event": event})
    body["additional_data"] = {"chat_presence_user_ids": [event["author_id"], AGENT]}
    return json.dumps(body)


def v2_template() -> str:
    """A legacy LiveChat v2 ``chat_started`` whose chat id contains ``PLACEHOLDER``."""
    return json.dumps({
        "event_type": "chat_started", "token": "v2-api-token-0123456789abcdef", "license_id": "1025707",
        "chat": {"id": f"PJ0{PLACEHOLDER}", "started_timestamp": int(time.time()), "messages": [], "tags": []},
        "visitor": {"id": "S1756720790.5c0e2f7a1b", "name": "Jane Roe", "email": "jane@example.org"},
    })


def lhc_template() -> str:
    """A Live Helper Chat visitor message (``chat.addmsguser``) whose message id is ``PLACEHOLDER``, a number."""
    now = int(time.time())
    return _number_slot(json.dumps({
        "event": "chat.addmsguser", "webhook_id": 3, "sent_at": now,
        "chat": {"id": 5388, "status": 1, "status_sub": 0, "dep_id": 2, "user_id": 7, "nick": "Marie Curie",
                 "email": "marie@example.org", "time": now - 60, "last_user_msg_time": now, "last_op_msg_time": 0},
        "msg": {"id": NUMBER, "msg": "Is there any update on my refund?", "user_id": 0, "time": now,
                "name_support": "", "meta_msg": ""},
    }))


NUMBER = 918_273_645  # stands for PLACEHOLDER where the token is a JSON number


def _number_slot(body: str) -> str:
    assert body.count(str(NUMBER)) == 1
    return body.replace(str(NUMBER), PLACEHOLDER)


CHATBOT_TOKEN = "bench-chatbot-token"
CHATBOT_PATH = f"/webhooks/chatbot?token={CHATBOT_TOKEN}"
EMAIL = "returning.customer@example.org"  # a returning customer's (B6 seeds the profile)


def call_template() -> str:
    return json.dumps({
        "chatId": "64f0a1b2c3d4e5f601234567", "messageId": f"bench-{PLACEHOLDER}", "userId": "64f0a1b2c3d4e5f6012345",
        "externalId": None,
        "node": {"id": "4b0d6bea-1a9b-4d29-bf23-85e8aa9619ae", "name": "Order lookup", "type": "WEBHOOK",
                 "webhookId": "602313f00000000000000000", "webhookName": "orders"},
        "userAttributes": {"default_name": "Jane Roe", "default_email": EMAIL},
        "attributes": {"order_no": "1042"},
    })


@dataclass(frozen=True)
class Conversations:
    """Chats split in two phases: ``opening`` (each chat starts and talks) and ``ending`` (each ends)."""

    opening: list[str]
    ending: list[str]

    @property
    def all(self) -> list[str]:
        return self.opening + self.ending


def conversations(tag: str, chats: int, messages: int) -> Conversations:
    """``chats`` chats of ``incoming_chat`` + ``messages`` ``incoming_event``s, then ``chat_deactivated``.

    ``tag`` keeps ids unique across runs sharing one Redis. Event times are now, so no silence
    deadline falls due while the benchmark runs.
    """
    opening, ending = [], []
    now = time.time()
    for n in range(chats):
        chat, thread, customer = f"C{tag}X{n}", f"T{tag}X{n}", f"u-{tag}-{n}"
        email = f"visitor.{tag}.{n}@example.org"
        users = [{"id": customer, "type": "customer", "name": "Jane Roe", "email": email},
                 {"id": AGENT, "type": "agent", "name": "Agent Smith"}]
        form = {"id": f"{thread}_1", "type": "filled_form", "author_id": customer, "created_at": _iso(now),
                "visibility": "all", "form_type": "prechat", "fields": [
                    {"type": "name", "id": "1", "label": "Name:", "answer": "Jane Roe"},
                    {"type": "email", "id": "2", "label": "E-mail:", "answer": email}]}
        opening.append(_body("incoming_chat", {"chat": {"id": chat, "users": users, "thread": {
            "id": thread, "active": True, "events": [form], "created_at": _iso(now)}}}))
        for i in range(messages):
            role, text = LINES[i % len(LINES)]
            author = customer if role == "customer" else AGENT
            event = {"id": f"{thread}_{i + 2}", "type": "message", "author_id": author,
                     "created_at": _iso(now + i + 1), "visibility": "all", "text": text}
            opening.append(_body("incoming_event", {"chat_id": chat, "thread_id": thread, "event": event}))
        ending.append(_body("chat_deactivated", {"chat_id": chat, "thread_id": thread, "user_id": AGENT}))
    return Conversations(opening, ending)
