"""GET /openapi.json, and the app checked against it with schemathesis."""

from __future__ import annotations

import base64
import re

import fakeredis
import hypothesis
import pytest
import schemathesis
from flask import Flask
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from chathooks.platforms.livechat.adapter import ACTIONS
from chathooks.platforms.livechat_v2.adapter import EVENTS
from chathooks.redis_client import connect
from tests.conftest import make_settings
from tests.helpers import SECRET, fixture

BASIC = "Basic " + base64.b64encode(b"hooks:pa55").decode()
CHATBOT_TOKEN = "cb-token"
LHC_TOKEN = "lhc-token"
ENV = {"INGRESS_BASIC_AUTH": "hooks:pa55", "CHATBOT_WEBHOOK_TOKENS": CHATBOT_TOKEN, "LHC_WEBHOOK_SECRETS": LHC_TOKEN}


def credentials(path: str) -> tuple[dict[str, str], dict[str, str] | None]:
    """The headers and query a webhook route needs to take a request at all."""
    if path == "/webhooks/lhc":
        return {"Authorization": f"Bearer {LHC_TOKEN}"}, None
    return {"Authorization": BASIC}, {"token": CHATBOT_TOKEN} if path == "/webhooks/chatbot" else None


def test_served_as_json_without_auth_even_when_webhooks_need_basic_auth(fake_redis):
    client = create_app(make_settings(INGRESS_BASIC_AUTH="hooks:pa55"), redis_client=fake_redis).test_client()
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.is_json
    assert response.json["openapi"].startswith("3.")
    assert response.json["paths"]["/webhooks/livechat"]["post"]["security"] == [{"basic": []}]


@pytest.mark.parametrize("env", [{}, {"INGRESS_BASIC_AUTH": "hooks:pa55"}])
def test_is_a_valid_openapi_3_document(fake_redis, env):
    app = create_app(make_settings(**env), redis_client=fake_redis)
    schemathesis.openapi.from_wsgi("/openapi.json", app).validate()


def test_webhooks_need_no_basic_auth_unless_configured(client):
    assert "security" not in client.get("/openapi.json").json["paths"]["/webhooks/livechat"]["post"]


def test_every_handled_action_is_in_the_action_enum(client):
    action = client.get("/openapi.json").json["components"]["schemas"]["Envelope"]["properties"]["action"]
    handled, others = action["anyOf"]
    assert sorted(handled["enum"]) == sorted(ACTIONS)
    assert others["not"]["enum"] == handled["enum"]


def test_the_v2_route_always_needs_basic_auth_and_documents_its_403(client):
    operation = client.get("/openapi.json").json["paths"]["/webhooks/livechat/v2"]["post"]
    assert operation["security"] == [{"basic": []}]
    assert "INGRESS_BASIC_AUTH" in operation["responses"]["403"]["description"]
    event_type = client.get("/openapi.json").json["components"]["schemas"]["V2Webhook"]["properties"]["event_type"]
    assert sorted(event_type["anyOf"][0]["enum"]) == sorted(EVENTS)


def test_the_chatbot_route_documents_its_verification_and_its_answer(client):
    paths = client.get("/openapi.json").json["paths"]["/webhooks/chatbot"]
    assert "text/plain" in paths["get"]["responses"]["200"]["content"]
    assert paths["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatbotAnswer"}
    assert [p["name"] for p in paths["post"]["parameters"]] == ["token"]


def test_the_lhc_route_documents_its_empty_answers(client):
    responses = client.get("/openapi.json").json["paths"]["/webhooks/lhc"]["post"]["responses"]
    assert "200" not in responses and "headers" in responses["204"]
    assert all("content" not in r for r in responses.values()), "every LHC answer has an empty body"


def test_the_size_limit_is_the_apps(fake_redis):
    client = create_app(make_settings(INGRESS_MAX_BYTES="4096"), redis_client=fake_redis).test_client()
    assert "4096 bytes" in client.get("/openapi.json").json["paths"]["/webhooks/livechat"]["post"]["responses"]["413"][
        "description"]


def test_every_route_is_documented(app: Flask, client):
    paths = client.get("/openapi.json").json["paths"]
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        assert path in paths, f"{rule.rule} is not in /openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {rule.rule} is not in /openapi.json"


def test_built_once_per_app(app: Flask, client):
    assert client.get("/openapi.json").json == app.extensions["chathooks.openapi"]


CONFORMANCE = [status_code_conformance, content_type_conformance, response_headers_conformance,
               response_schema_conformance]


REDIS_DOWN_BODIES = {"/webhooks/livechat": ("livechat", "incoming_event"),
                     "/webhooks/livechat/v2": ("livechat_v2", "chat_ended"),
                     "/webhooks/chatbot": ("chatbot", "webhook_block"),
                     "/webhooks/lhc": ("lhc", "chat_addmsguser")}


@pytest.mark.parametrize("method, path", [
    ("POST", "/webhooks/livechat"), ("POST", "/webhooks/livechat/v2"), ("POST", "/webhooks/chatbot"),
    ("POST", "/webhooks/lhc"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/healthz")])
def test_answers_with_redis_down_conform_too(method, path):
    app = create_app(make_settings(**ENV), redis_client=connect("redis://127.0.0.1:1/0", timeout=0.2))
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]
    if method == "POST":
        source, name = REDIS_DOWN_BODIES[path]
        headers, query = credentials(path)
        case = operation.Case(body=fixture(name, source), headers=headers, query=query,
                              media_type="application/json")
    else:
        case = operation.Case()
    response = case.call()
    assert response.status_code == (200 if path == "/healthz" else 503)
    case.validate_response(response, checks=CONFORMANCE)  # a 503 is the documented answer here


# One app for every generated request; with HTTP Basic configured, so the v2 route takes bodies at all.
schema = schemathesis.openapi.from_wsgi("/openapi.json",
                                        create_app(make_settings(**ENV), redis_client=fakeredis.FakeRedis()))


@schema.parametrize()
@hypothesis.settings(max_examples=50, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_the_app_conforms_to_its_openapi_document(case):  # type: ignore[no-untyped-def]
    # Generated secrets are never accepted; put the real one in so the envelope and payload are exercised too.
    if isinstance(case.body, dict) and isinstance(case.body.get("secret_key"), str):
        case.body["secret_key"] = SECRET
    if case.path.startswith("/webhooks/"):
        headers, query = credentials(case.path)
        case.headers = {**(case.headers or {}), **headers}
        if query:
            case.query = {**(case.query or {}), **query}
    case.call_and_validate(checks=[not_a_server_error, *CONFORMANCE])
