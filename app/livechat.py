"""``POST /webhooks/livechat``: LiveChat v3.5/v3.6 webhooks, verified, deduplicated and queued."""

from __future__ import annotations

from flask import Blueprint, request

from app.ingress import Rejection, current_ingress, read_json_object
from chathooks.sources import livechat

bp = Blueprint("livechat", __name__)


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
    try:
        envelope = livechat.load_envelope(body)
        delivery = livechat.to_delivery(envelope, ingress.settings)
    except livechat.InvalidPayload as exc:
        raise Rejection(400, "invalid_payload", "invalid webhook", exc.errors) from None
    if delivery is None:
        ingress.metrics.count("received:livechat", "ignored:livechat")
        return {"status": "ignored"}
    return ingress.queue(delivery)
