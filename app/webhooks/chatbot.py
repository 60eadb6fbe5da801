"""``GET|POST /webhooks/chatbot``: ChatBot.com webhook blocks, answered at once from the customer's profile.

The POST queues the call once as a lead and reads the customer's profile in the same round trip; it
makes no outbound call. The ``token`` rides in the query string: the access log redacts it (``app.access_log``).
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, request

from app.ingress import Rejection, accepted, current_ingress, read_json_object, unavailable
from app.openapi import json_response, ref, webhook
from chathooks.platforms.base import InvalidPayload
from chathooks.platforms.chatbot import adapter, answers
from chathooks.settings import Settings

bp = Blueprint(adapter.SOURCE, __name__)
MAX_CHALLENGE = 1024


@bp.before_request
def token() -> None:
    # Checked before anything else is looked at; it is never logged, queued or echoed.
    if not accepted(request.args.get("token"), current_ingress().settings.chatbot_tokens):
        raise Rejection(401, "bad_token", "token missing or not accepted")


@bp.get("/webhooks/chatbot")
def verify() -> Response:
    """ChatBot's verification request: the body is exactly the ``challenge``."""
    challenge = request.args.get("challenge")
    if not challenge or len(challenge) > MAX_CHALLENGE:
        raise Rejection(400, "invalid_payload", "challenge missing or too long",
                        {"challenge": [f"1 to {MAX_CHALLENGE} characters"]})
    response = Response(challenge, mimetype="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/webhooks/chatbot")
def answer() -> dict[str, Any]:
    ingress = current_ingress()
    body = read_json_object(request, ingress.settings.ingress_max_bytes)
    try:
        call = adapter.load(body)
    except InvalidPayload as exc:
        raise Rejection(400, "invalid_payload", "invalid webhook", exc.errors) from None
    # Queued once per messageId (503 when it cannot be), the profile read in the same round trip.
    reads = ingress.profiles.reads(adapter.email_of(call), call.get("externalId"))
    replies, _ = ingress.queue_after(reads, adapter.to_delivery(call, ingress.settings))
    try:
        profile = ingress.profiles.found(reads, replies)
    except redis.RedisError as exc:
        raise unavailable(f"customer profiles unavailable: {type(exc).__name__}") from None
    return answers.answer(ingress.rules.chatbot, call, profile)


def openapi(settings: Settings) -> dict[str, Any]:
    """This route's part of ``/openapi.json``."""
    token = {"name": "token", "in": "query", "required": True, "schema": {"type": "string"},
             "description": "one of CHATBOT_WEBHOOK_TOKENS (redacted from every log line)"}
    call = {
        "type": "object",
        "description": "A ChatBot.com webhook block's call. Unknown fields are accepted and ignored.",
        "required": ["messageId", "node"],
        "properties": {
            "chatId": {"type": "string", "nullable": True}, "messageId": {"type": "string", "minLength": 1},
            "userId": {"type": "string", "nullable": True}, "externalId": {"type": "string", "nullable": True},
            "node": {"type": "object", "properties": {k: {"type": "string", "nullable": True} for k in
                                                       ("id", "name", "type", "webhookId", "webhookName")}},
            "userAttributes": {"type": "object"}, "attributes": {"type": "object"},
        },
    }
    reply = {"type": "object", "required": ["attributes"],
             "properties": {"responses": {"type": "array", "items": {"type": "object"}},
                            "attributes": {"type": "object", "additionalProperties": {"type": "string"}}}}
    post = webhook(settings, "ChatBot.com webhook block: answered at once from the customer's profile",
                   "answerChatbotWebhook", "ChatbotCall", "token missing or not accepted",
                   accepted=json_response("the answer (queued once per messageId as well)", ref("ChatbotAnswer")))
    post["post"]["parameters"] = [token]
    verification = {"get": {
        "summary": "ChatBot.com's verification request", "operationId": "verifyChatbotWebhook",
        "parameters": [token, {"name": "challenge", "in": "query", "required": True,
                               "schema": {"type": "string", "minLength": 1, "maxLength": MAX_CHALLENGE}}],
        "responses": {
            "200": {"description": "exactly the challenge", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "400": json_response("challenge missing or too long", ref("Invalid")),
            "401": json_response("token missing or not accepted", ref("Error")),
        },
    }}
    return {"paths": {"/webhooks/chatbot": {**verification, **post}},
            "schemas": {"ChatbotCall": call, "ChatbotAnswer": reply}}
