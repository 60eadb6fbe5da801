"""``POST /webhooks/livechat/v2``: legacy LiveChat v2 webhooks, behind HTTP Basic (they carry no secret)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app.ingress import current_ingress, read_json_object
from app.openapi import handled_or_not, json_response, ref, webhook
from chathooks.platforms.livechat_v2 import adapter
from chathooks.settings import Settings

bp = Blueprint(adapter.SOURCE, __name__)


@bp.before_request
def basic_auth() -> None:
    current_ingress().check_basic_auth(request, required="LiveChat v2 webhooks carry no secret of their own, "
                                                         "so /webhooks/livechat/v2 needs HTTP Basic credentials")


@bp.post("/webhooks/livechat/v2")
def receive() -> dict[str, str]:
    ingress = current_ingress()
    body = read_json_object(request, ingress.settings.ingress_max_bytes)
    body.pop("token", None)  # a LiveChat API credential, not a signature: never queued, logged or stored
    return ingress.accept(adapter.SOURCE, lambda: adapter.to_delivery(body, ingress.settings))


def openapi(settings: Settings) -> dict[str, Any]:
    """This route's part of ``/openapi.json``."""
    body = {
        "type": "object",
        "description": "A legacy LiveChat v2 webhook: one key per data type it was registered with. Unknown fields "
                       "are accepted and ignored; `token` (a LiveChat API credential) is dropped unread.",
        "required": ["event_type", "license_id"],
        "properties": {
            "event_type": handled_or_not(adapter.EVENTS, "event type"),
            "token": {"type": "string", "description": "dropped: never queued, logged or stored"},
            "license_id": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]},
            "event_unique_id": {"type": "string", "minLength": 1, "maxLength": 256},
            "chat": {"type": "object", "description": "required for chat_started, chat_ended and chat_changed"},
            "visitor": {"type": "object", "description": "required for visitor_queued"},
            "pre_chat_survey": {"type": "array", "items": {"type": "object"}},
            "ticket": {"type": "object", "description": "required for ticket_created"},
            "canned_response": {"type": "object"},
        },
    }
    route = webhook(settings, "Legacy LiveChat v2 webhooks: HTTP Basic, deduplicated, durably queued",
                    "receiveLivechatV2Webhook", "V2Webhook", "HTTP Basic authentication required",
                    security="basic",
                    extra={"403": json_response("INGRESS_BASIC_AUTH is not set: this route accepts nothing",
                                                ref("Error"))})
    return {"paths": {"/webhooks/livechat/v2": route}, "schemas": {"V2Webhook": body}}
