"""``POST /webhooks/lhc``: Live Helper Chat's Rest API calls, one template for every event.

Every answer has an empty body: LHC writes any response body into the visitor's chat. The status
says what happened (204 with ``X-Chathooks-Status: queued|duplicate|ignored``; 401, 400, 413, 415,
503), and a rejection's field errors go to the log and the rejection metric. LHC's default body
type sends no Content-Type, so a JSON object is taken with none, or as text or form-encoded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from app.ingress import Rejection, accepted, count_rejection, current_ingress, read_json_object
from app.openapi import webhook
from chathooks.platforms.lhc import adapter
from chathooks.settings import Settings

bp = Blueprint(adapter.SOURCE, __name__)
log = logging.getLogger("chathooks.ingress.lhc")
CONTENT_TYPES = frozenset({"", "application/json", "text/plain", "application/x-www-form-urlencoded"})


@bp.before_request
def bearer() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not accepted(token.strip(), current_ingress().settings.lhc_secrets):
        raise Rejection(401, "bad_token", "Authorization: Bearer token missing or not accepted")


@bp.post("/webhooks/lhc")
def receive() -> Response:
    ingress = current_ingress()
    body = read_json_object(request, ingress.settings.ingress_max_bytes, CONTENT_TYPES.__contains__)
    answer = ingress.accept(adapter.SOURCE, lambda: adapter.to_delivery(body, ingress.settings, ingress.rules.lhc))
    return Response(status=204, headers={"X-Chathooks-Status": answer["status"]})


@bp.errorhandler(Rejection)
def rejected(exc: Rejection) -> Response:
    if exc.countable:
        count_rejection(exc.reason)
    log.warning("LHC call rejected (%s %s): %s%s", exc.status, exc.reason, exc.error,
                f" {json.dumps(exc.details, default=str)[:2000]}" if exc.details else "")
    return Response(status=exc.status, headers=exc.headers)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    if exc.code == 413:
        count_rejection("too_large")
    return Response(status=exc.code or 500)


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on an LHC call")
    return Response(status=500)


def openapi(settings: Settings) -> dict[str, Any]:
    """This route's part of ``/openapi.json``."""
    nullable = lambda kind: {"type": kind, "nullable": True}  # noqa: E731
    ids = {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True}
    chat = {"type": "object", "required": ["id"], "properties": {
        **{k: ids for k in ("id", "status", "status_sub", "dep_id", "user_id", "iwh_id", "time", "cls_time",
                            "last_user_msg_time", "last_op_msg_time", "lsync")},
        **{k: nullable("string") for k in ("nick", "email", "phone")}}}
    call = {
        "type": "object",
        "description": "The one template of every LHC event; fields an event lacks are null, ids numbers or strings.",
        "required": ["chat"],
        "properties": {
            "event": {**nullable("string"), "anyOf": [{"enum": sorted(adapter.EVENTS)}, {"type": "string"}],
                      "description": "{{args.lhc_event}}: handled events are queued, others answered ignored"},
            "trigger_event": {**nullable("string"), "description": "{{custom_args_1}}: the fallback before 4.79v"},
            "webhook_id": {}, "sent_at": {}, "chat": chat,
            "msg": {"type": "object", "nullable": True, "properties": {
                "id": ids, "msg": nullable("string"), "user_id": ids, "time": ids, "name_support": nullable("string"),
                "meta_msg": {"description": "the JSON string LHC stores, or an object"}}},
            "operator": {"type": "object", "nullable": True}, "survey": {"type": "object", "nullable": True},
            "survey_item": {"type": "object", "nullable": True},
        },
    }
    empty = {"X-Chathooks-Status": {"schema": {"type": "string", "enum": ["queued", "duplicate", "ignored"]}}}
    route = webhook(settings, "Live Helper Chat Rest API calls: every answer has an empty body", "receiveLhcWebhook",
                    "LhcCall", "Bearer token missing or not accepted", security="bearer", bodies=False,
                    media_types=tuple(sorted(CONTENT_TYPES - {""})),
                    accepted={"description": "queued, duplicate or ignored (the header says which)", "headers": empty})
    return {"paths": {"/webhooks/lhc": route}, "schemas": {"LhcCall": call}}
