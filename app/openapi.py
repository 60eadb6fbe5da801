"""The ingress's OpenAPI 3.0 document, served at ``GET /openapi.json``.

Built once per app from its settings (the 413 limit, the Basic-auth requirement) and from each
webhook blueprint's own part (``openapi(settings)``: its paths and schemas, the handled actions
taken from its adapter's table), so the document cannot drift from the routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version
from types import ModuleType
from typing import Any

from app.ingress import MAX_DEPTH
from chathooks.settings import Settings

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
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


def handled_or_not(handled: Iterable[str], what: str) -> dict[str, Any]:
    """A string field whose handled values are queued and every other value is answered ignored."""
    values = sorted(handled)
    return {
        "type": "string", "minLength": 1, "maxLength": 100,
        "anyOf": [
            {"enum": values, "description": f"automated {what}: queued, or duplicate on a retry"},
            {"not": {"enum": values}, "description": f"any other {what}: answered ignored"},
        ],
    }


def webhook(settings: Settings, summary: str, operation_id: str, body: str, unauthorized: str, *,
            security: str | None = None, extra: dict[str, Any] | None = None, accepted: dict[str, Any] | None = None,
            media_types: tuple[str, ...] = (JSON,), bodies: bool = True) -> dict[str, Any]:
    """A webhook route's POST operation: the answers every webhook route shares, and its own ``extra``.

    ``security`` names a scheme of ``securitySchemes``; without ``bodies`` every answer is empty and
    success is a 204 (the ``accepted`` answer describes it).
    """
    def answer(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
        if bodies:
            return json_response(description, schema, headers)
        return {"description": description, **({"headers": headers} if headers else {})}

    responses: dict[str, Any] = {
        "200" if bodies else "204": accepted or answer(
            "queued once; a retry of a delivery is a duplicate; no automation: ignored", ref("Accepted")),
        "400": answer("body not UTF-8 JSON (duplicate keys, NaN and unpaired surrogates included), "
                      f"not an object, nested deeper than {MAX_DEPTH} levels, or invalid", ref("Invalid")),
        "401": answer(unauthorized, ref("Error"),
                      {"WWW-Authenticate": {"description": "on a Basic-auth failure (INGRESS_BASIC_AUTH set)",
                                            "schema": {"type": "string"}}}),
        "413": answer(f"body larger than {settings.ingress_max_bytes} bytes (INGRESS_MAX_BYTES)", ref("Error")),
        "415": answer("Content-Type is not JSON", ref("Error")),
        "503": answer("Redis or the broker unreachable: retry (a retry is deduplicated)", ref("Error"),
                      {"Retry-After": {"required": True, "schema": {"type": "integer"}}}),
        **(extra or {}),
    }
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": operation_id,
        "requestBody": {"required": True, "content": {t: {"schema": ref(body)} for t in media_types}},
        "responses": dict(sorted(responses.items())),
    }
    if security:
        operation["security"] = [{security: []}]
    return {"post": operation}


def _components(schemas: dict[str, Any]) -> dict[str, Any]:
    error = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
    return {
        "schemas": {
            **schemas,
            "Accepted": {"oneOf": [_status("queued", True), _status("duplicate", True), _status("ignored", False)]},
            "Error": error,
            "FieldErrors": {
                "type": "object",
                "description": "messages per field, nested like the body (list items by index)",
                "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                   ref("FieldErrors")]},
            },
            "Invalid": {**error, "required": ["error", "fields"],
                        "properties": {**error["properties"], "fields": ref("FieldErrors")}},
            "Readiness": {
                "type": "object", "required": ["status", "checks"],
                "properties": {
                    "status": {"type": "string", "enum": ["ready", "unavailable"]},
                    "checks": {"type": "object", "required": ["redis", "broker"],
                               "properties": {"redis": {"type": "boolean"}, "broker": {"type": "boolean"}}},
                },
            },
        },
        "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                            "bearer": {"type": "http", "scheme": "bearer"}},
    }


def _ops() -> dict[str, Any]:
    return {
        "/healthz": {"get": {"summary": "the process is alive", "operationId": "healthz", "responses": {
            "200": json_response("alive", _status("ok", False))}}},
        "/readyz": {"get": {"summary": "Redis and the broker answer", "operationId": "readyz", "responses": {
            "200": json_response("ready", ref("Readiness")),
            "503": json_response("Redis or the broker unreachable", ref("Readiness"))}}},
        "/metrics": {"get": {"summary": "Prometheus metrics, shared by every process", "operationId": "metrics",
                             "responses": {"200": _text("Prometheus text exposition format"),
                                           "503": _text("Redis unreachable")}}},
        "/openapi.json": {"get": {"summary": "this document", "operationId": "openapi", "responses": {
            "200": json_response("OpenAPI 3.0 document", {"type": "object"})}}},
    }


def document(settings: Settings, sources: Iterable[ModuleType]) -> dict[str, Any]:
    """The OpenAPI document of an app built with ``settings`` and these webhook blueprints' modules."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for source in sources:
        part = source.openapi(settings)
        paths.update(part["paths"])
        schemas.update(part["schemas"])
    return {
        "openapi": "3.0.3",
        "info": {"title": "chathooks ingress", "version": version("chathooks")},
        "paths": {**paths, **_ops()},
        "components": _components(schemas),
    }
