"""``POST /webhooks/livechat``: LiveChat v3.5/v3.6 webhooks, verified, deduplicated and queued."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app.ingress import Rejection, current_ingress, read_json_object
from app.openapi import handled_or_not, webhook
from chathooks.platforms.livechat import adapter
from chathooks.settings import Settings

bp = Blueprint(adapter.SOURCE, __name__)


@bp.before_request
def basic_auth() -> None:
    current_ingress().check_basic_auth(request)


@bp.post("/webhooks/livechat")
def receive() -> dict[str, str]:
    ingress = current_ingress()
    body = read_json_object(request, ingress.settings.ingress_max_bytes)
    # The secret is checked before anything else is looked at, and never leaves this function.
    if not ingress.secret_accepted(body.get("secret_key")):
        raise Rejection(401, "bad_secret", "secret_key missing or not accepted")
    return ingress.accept(adapter.SOURCE, lambda: adapter.to_delivery(adapter.load_envelope(body), ingress.settings))


def openapi(settings: Settings) -> dict[str, Any]:
    """This route's part of ``/openapi.json``."""
    text = {"type": "string", "minLength": 1, "maxLength": 256}
    envelope = {
        "type": "object",
        "description": "A LiveChat v3.5/v3.6 webhook. Unknown fields are accepted and ignored.",
        "required": ["webhook_id", "secret_key", "action", "payload"],
        "properties": {
            "webhook_id": text,
            "secret_key": {"type": "string", "description": "one of LIVECHAT_WEBHOOK_SECRETS; checked first"},
            "action": handled_or_not(adapter.ACTIONS, "action"),
            "organization_id": text,
            "license_id": {"description": "pre-v3.4 deliveries; accepted, not required"},
            "payload": {"type": "object", "description": "validated against the action's schema"},
            "additional_data": {"type": "object"},
        },
    }
    route = webhook(settings, "LiveChat v3.5/v3.6 webhooks: verified, deduplicated, durably queued",
                    "receiveLivechatWebhook", "Envelope",
                    "secret_key missing or not accepted, or HTTP Basic authentication required",
                    security="basic" if settings.ingress_basic_auth is not None else None)
    return {"paths": {"/webhooks/livechat": route}, "schemas": {"Envelope": envelope}}
