"""The ingress's OpenAPI 3.0 document, served at ``GET /openapi.json``.

Built once per app: the 413 limit and the Basic-auth requirement come from its settings, and
the handled actions from the adapter's ``ACTIONS`` table, so the document cannot drift from them.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from app.ingress import MAX_DEPTH
from chathooks.settings import Settings
from chathooks.sources.livechat import ACTIONS

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _status(value: str, with_id: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"status": {"type": "string", "enum": [value]}}
    if with_id:
        properties["id"] = {"type": "string", "description": "the delivery id (dedupe key)"}
    return {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}


def _envelope() -> dict[str, Any]:
    handled = sorted(ACTIONS)
    text = {"type": "string", "minLength": 1, "maxLength": 256}
    return {
        "type": "object",
        "description": "A LiveChat v3.5/v3.6 webhook. Unknown fields are accepted and ignored.",
        "required": ["webhook_id", "secret_key", "action", "payload"],
        "properties": {
            "webhook_id": text,
            "secret_key": {"type": "string", "description": "one of LIVECHAT_WEBHOOK_SECRETS; checked first"},
            "action": {
                "type": "string", "minLength": 1, "maxLength": 100,
                "anyOf": [
                    {"enum": handled, "description": "automated: queued, or duplicate on a retry"},
                    {"not": {"enum": handled}, "description": "any other action: answered ignored"},
                ],
            },
            "organization_id": text,
            "license_id": {"description": "pre-v3.4 deliveries; accepted, not required"},
            "payload": {"type": "object", "description": "validated against the action's schema"},
            "additional_data": {"type": "object"},
        },
    }


def _components() -> dict[str, Any]:
    error = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
    return {
        "schemas": {
            "Envelope": _envelope(),
            "Accepted": {"oneOf": [_status("queued", True), _status("duplicate", True), _status("ignored", False)]},
            "Error": error,
            "FieldErrors": {
                "type": "object",
                "description": "messages per field, nested like the body (list items by index)",
                "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                   _ref("FieldErrors")]},
            },
            "Invalid": {**error, "required": ["error", "fields"],
                        "properties": {**error["properties"], "fields": _ref("FieldErrors")}},
            "Readiness": {
                "type": "object", "required": ["status", "checks"],
                "properties": {
                    "status": {"type": "string", "enum": ["ready", "unavailable"]},
                    "checks": {"type": "object", "required": ["redis", "broker"],
                               "properties": {"redis": {"type": "boolean"}, "broker": {"type": "boolean"}}},
                },
            },
        },
        "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
    }


def _livechat(settings: Settings) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": "LiveChat v3.5/v3.6 webhooks: verified, deduplicated, durably queued",
        "operationId": "receiveLivechatWebhook",
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Envelope")}}},
        "responses": {
            "200": _json("queued once; a retry of a delivery is a duplicate; no automation: ignored", _ref("Accepted")),
            "400": _json("body not UTF-8 JSON (duplicate keys, NaN and unpaired surrogates included), "
                         f"not an object, nested deeper than {MAX_DEPTH} levels, or envelope/payload invalid",
                         _ref("Invalid")),
            "401": _json("secret_key missing or not accepted, or HTTP Basic authentication required", _ref("Error"),
                         {"WWW-Authenticate": {"description": "on a Basic-auth failure (INGRESS_BASIC_AUTH set)",
                                               "schema": {"type": "string"}}}),
            "413": _json(f"body larger than {settings.ingress_max_bytes} bytes (INGRESS_MAX_BYTES)", _ref("Error")),
            "415": _json("Content-Type is not JSON", _ref("Error")),
            "503": _json("Redis or the broker unreachable: retry (a retry is deduplicated)", _ref("Error"),
                         {"Retry-After": {"required": True, "schema": {"type": "integer"}}}),
        },
    }
    if settings.ingress_basic_auth is not None:
        operation["security"] = [{"basic": []}]
    return {"post": operation}


def _ops() -> dict[str, Any]:
    return {
        "/healthz": {"get": {"summary": "the process is alive", "operationId": "healthz", "responses": {
            "200": _json("alive", _status("ok", False))}}},
        "/readyz": {"get": {"summary": "Redis and the broker answer", "operationId": "readyz", "responses": {
            "200": _json("ready", _ref("Readiness")),
            "503": _json("Redis or the broker unreachable", _ref("Readiness"))}}},
        "/metrics": {"get": {"summary": "Prometheus metrics, shared by every process", "operationId": "metrics",
                             "responses": {"200": _text("Prometheus text exposition format"),
                                           "503": _text("Redis unreachable")}}},
        "/openapi.json": {"get": {"summary": "this document", "operationId": "openapi", "responses": {
            "200": _json("OpenAPI 3.0 document", {"type": "object"})}}},
    }


def document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of an app built with ``settings``."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "chathooks ingress", "version": version("chathooks")},
        "paths": {"/webhooks/livechat": _livechat(settings), **_ops()},
        "components": _components(),
    }
