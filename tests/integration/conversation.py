"""A realistic LiveChat conversation as webhook bodies, built from the fixtures with fresh ids and chosen times.

A ``Conversation`` hands out ``Step``s in the order things happen. Each step is what LiveChat
would send (``body``, a full webhook envelope for the conversation's API version) together
with what changed on LiveChat's side first (an event stored in the thread, a user who joined,
the chat ending), so a test can mirror the change into FakeLiveChat before posting the body:
``get_chat`` then answers what the real API would at that moment.

    conv = Conversation("3.6")
    lc.seed_chat(conv.chat())                      # or seed it when the chat starts
    step = conv.start(at=time.time(), text="Hi, I want a refund for order #1042")

Event ids follow LiveChat's ``<thread id>_<n>`` shape. The conversation numbers its own events
from 101 so they never collide with the ids FakeLiveChat gives to events sent through its API
(``send_event``: 1, 2, ...), which reach the conversation through ``from_api``.
"""

from __future__ import annotations

import copy
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.helpers import FIXTURES, SECRET, fixture

BOT_ID = "9f3c1a7e0b2d4c6e8a1b3d5f7e9c0a2b"  # the fixtures' bot, also FakeLiveChat's default bot
AGENT_ID = "agent.smith@example.com"
FIRST_EVENT_NUMBER = 101
_ID_ALPHABET = string.ascii_uppercase + string.digits


def rfc3339(ts: float) -> str:
    """LiveChat's time format: RFC 3339, UTC, microseconds, ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def livechat_id() -> str:
    """A fresh id shaped like LiveChat's chat and thread ids (10 upper-case letters and digits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def envelope(action: str, version: str, variant: str | None = None) -> dict[str, Any]:
    """The fixture envelope for ``action`` in ``version`` (its v3.5 twin when there is one)."""
    name = f"{action}.{variant}" if variant else action
    if version == "3.5" and (FIXTURES / "livechat" / f"{name}.v3.5.json").exists():
        name = f"{name}.v3.5"
    body = copy.deepcopy(fixture(name))
    assert body["secret_key"] == SECRET and body["action"] == action
    return body


@dataclass
class Step:
    """One webhook delivery and the change on LiveChat's side that it reports."""

    what: str
    body: dict[str, Any]
    event: dict[str, Any] | None = None  # stored in the thread before the webhook is sent
    user: dict[str, Any] | None = None  # joined the chat before the webhook is sent
    ends_chat: bool = False  # the chat was deactivated before the webhook is sent

    @property
    def action(self) -> str:
        return self.body["action"]


@dataclass
class Conversation:
    """One chat with one thread between a customer, our bot and a human agent."""

    version: str = "3.6"
    bot_id: str = BOT_ID
    agent_id: str = AGENT_ID
    customer_name: str = "Jane Roe"
    customer_email: str = "Jane.Roe@Example.org"
    chat_id: str = field(default_factory=livechat_id)
    thread_id: str = field(default_factory=livechat_id)
    customer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    events: list[dict[str, Any]] = field(default_factory=list)  # the thread's events so far
    users: list[dict[str, Any]] = field(default_factory=list)  # the chat's users so far
    created_at: float | None = None
    active: bool = True
    _next: int = FIRST_EVENT_NUMBER

    # --- what LiveChat's get_chat answers ------------------------------------------------

    def chat(self) -> dict[str, Any]:
        """The chat as ``get_chat`` returns it now: users, one thread with its events, tags and active flag."""
        assert self.created_at is not None, "the chat has not started"
        return {
            "id": self.chat_id,
            "users": copy.deepcopy(self.users),
            "thread": {
                "id": self.thread_id,
                "active": self.active,
                "user_ids": [u["id"] for u in self.users],
                "events": copy.deepcopy(self.events),
                "tags": [],
                "properties": {},
                "access": {"group_ids": [0]},
                "created_at": rfc3339(self.created_at),
            },
            "properties": {},
            "access": {"group_ids": [0]},
        }

    # --- webhooks, in the order things happen ----------------------------------------------

    def routing_status(self, status: str = "accepting_chats") -> Step:
        """``routing_status_set`` for the bot (v3.5 spells the status with spaces)."""
        body = envelope("routing_status_set", self.version)
        spelled = status.replace("_", " ") if self.version == "3.5" else status
        body["payload"] = {"agent_id": self.bot_id, "status": spelled}
        return Step(f"bot {status}", body)

    def start(self, at: float, text: str) -> Step:
        """``incoming_chat``: the customer filled the pre-chat form (name, email) and wrote ``text`` at ``at``."""
        assert self.created_at is None, "the chat has already started"
        self.created_at = at - 0.5
        body = envelope("incoming_chat", self.version)
        chat = body["payload"]["chat"]
        customer, bot = copy.deepcopy(chat["users"][0]), copy.deepcopy(chat["users"][1])
        customer.update(id=self.customer_id, name=self.customer_name, email=self.customer_email,
                        created_at=rfc3339(at - 420), events_seen_up_to=rfc3339(at),
                        customer_last_event_created_at=rfc3339(at))
        visit = customer.get("visit") or customer.get("last_visit")
        visit["started_at"] = rfc3339(at - 420)
        for n, page in enumerate(visit["last_pages"]):
            page["opened_at"] = rfc3339(at - 420 + 30 * n)
        bot.update(id=self.bot_id, events_seen_up_to=rfc3339(at))
        self.users = [customer, bot]
        form = self._event(chat["thread"]["events"][0], at - 0.4, self.customer_id)
        form["fields"][0]["answer"] = self.customer_name
        form["fields"][1]["answer"] = self.customer_email
        message = self._event(chat["thread"]["events"][1], at, self.customer_id, text=text)
        self.events = [form, message]
        chat["id"] = self.chat_id
        chat["users"] = copy.deepcopy(self.users)
        thread = chat["thread"]
        thread.update(id=self.thread_id, active=True, user_ids=[u["id"] for u in self.users],
                      events=copy.deepcopy(self.events), created_at=rfc3339(self.created_at))
        return Step("chat starts", body)

    def customer_says(self, text: str, at: float) -> Step:
        return self._message(self.customer_id, text, at, "customer")

    def bot_says(self, text: str, at: float) -> Step:
        return self._message(self.bot_id, text, at, "bot")

    def agent_says(self, text: str, at: float) -> Step:
        return self._message(self.agent_id, text, at, "agent")

    def agent_joins(self, at: float, name: str = "Agent Smith") -> Step:
        """``user_added_to_chat``: the human agent was assigned (no fixture: built from the documented payload)."""
        user = {"id": self.agent_id, "type": "agent", "name": name, "email": self.agent_id, "present": True,
                "events_seen_up_to": rfc3339(at), "avatar": "", "visibility": "all"}
        self.users.append(user)
        body = self._envelope("user_added_to_chat", {
            "chat_id": self.chat_id, "thread_id": self.thread_id, "user": copy.deepcopy(user),
            "reason": "manual", "requester_id": self.agent_id,
        })
        return Step("agent joins", body, user=copy.deepcopy(user))

    def from_api(self, event: dict[str, Any]) -> Step:
        """The ``incoming_event`` LiveChat sends for an event posted through its API (our bot's own message)."""
        self.events.append(copy.deepcopy(event))
        return Step(f"{event.get('author_id')} posted {event['id']}", self._incoming_event(event), event=event)

    def rated(self, score: int, at: float, comment: str | None = "Took too long") -> list[Step]:
        """Both signals of one rating: ``thread_properties_updated`` and the ``rating.chat_rated`` system message."""
        word = {0: "bad", 1: "good"}[score]
        props = envelope("thread_properties_updated", self.version)
        rating: dict[str, Any] = {"score": score} | ({"comment": comment} if comment else {})
        props["payload"] = {"chat_id": self.chat_id, "thread_id": self.thread_id, "properties": {"rating": rating}}
        template = fixture("incoming_event.rating")["payload"]["event"]
        system = self._event(template, at, None, text=f"{self.customer_name} rated the chat as {word}")
        system["text_vars"] = {"customer": self.customer_name, "score": word}
        self.events.append(system)
        return [Step(f"rated {word} (thread property)", props),
                Step(f"rated {word} (system message)", self._incoming_event(system), event=system)]

    def deactivated(self) -> Step:
        """``chat_deactivated``: the agent closed the chat."""
        self.active = False
        body = envelope("chat_deactivated", self.version)
        body["payload"] = {"chat_id": self.chat_id, "thread_id": self.thread_id, "user_id": self.agent_id}
        return Step("chat ends", body, ends_chat=True)

    # --- plumbing ------------------------------------------------------------------------

    def _message(self, author: str, text: str, at: float, who: str) -> Step:
        template = fixture("incoming_event")["payload"]["event"]
        event = self._event(template, at, author, text=text)
        self.events.append(event)
        return Step(f"{who}: {text}", self._incoming_event(event), event=event)

    def _event(self, template: dict[str, Any], at: float, author: str | None, **fields: Any) -> dict[str, Any]:
        event = copy.deepcopy(template)
        event.update(id=f"{self.thread_id}_{self._next}", created_at=rfc3339(at), **fields)
        self._next += 1
        if author is None:
            event.pop("author_id", None)  # system messages have no author
        else:
            event["author_id"] = author
        return event

    def _incoming_event(self, event: dict[str, Any]) -> dict[str, Any]:
        body = self._envelope("incoming_event", {"chat_id": self.chat_id, "thread_id": self.thread_id,
                                                 "event": copy.deepcopy(event)})
        body["additional_data"] = {"chat_presence_user_ids": [u["id"] for u in self.users]}
        return body

    def _envelope(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            body = envelope(action, self.version)
        except FileNotFoundError:  # an action without a fixture: the shared envelope fields
            body = envelope("chat_deactivated", self.version)
            body.update(action=action, webhook_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{action}/{self.version}").hex)
        body["payload"] = payload
        body["additional_data"] = {}
        return body
