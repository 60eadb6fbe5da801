"""ChatBot.com adapter: a webhook block's POST, validated, and the Delivery it is queued as.

The POST is answered at once (``answers``); it is also queued once (dedupe ``messageId``) as a
``lead`` carrying what the bot collected (``userAttributes.default_email``/``default_name``), so
list sync upserts it as for every other source. A ChatBot call alone does not make a customer known.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from chathooks.events import Delivery, Event, Kind
from chathooks.fast_load import FastLoader
from chathooks.platforms.base import InvalidPayload, delivery
from chathooks.platforms.chatbot.schemas import WebhookSchema
from chathooks.settings import Settings

SOURCE = "chatbot"
ACTION = "webhook_block"

WEBHOOK = FastLoader(WebhookSchema())


def load(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return WEBHOOK.load(body)
    except ValidationError as exc:
        raise InvalidPayload(exc.messages) from None


def email_of(call: dict[str, Any]) -> str | None:
    email = call["userAttributes"].get("default_email")
    return email.strip() if isinstance(email, str) and "@" in email else None


def to_delivery(call: dict[str, Any], settings: Settings, received_at: float | None = None) -> Delivery | None:
    name = call["userAttributes"].get("default_name")
    node = call["node"]
    lead = Event(key=f"{SOURCE}:{call['messageId']}", source=SOURCE, kind=Kind.LEAD, chat_id=call.get("chatId"),
                 author_id=call.get("externalId") or call.get("userId"), customer_email=email_of(call),
                 customer_name=name.strip() or None if isinstance(name, str) else None,
                 raw={"node": {k: node.get(k) for k in ("id", "name", "webhookName") if node.get(k)}})
    return delivery(SOURCE, ACTION, (SOURCE, call["messageId"]), [lead], settings.dedupe_ttl_seconds, received_at)
