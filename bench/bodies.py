"""LiveChat v3.6 webhook bodies for the benchmarks: one message template, and whole conversations."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.redis_target import SECRET

PLACEHOLDER = "%ID%"  # the load generator puts a unique token here, so every request is a new delivery
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
