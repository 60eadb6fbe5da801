"""GET /openapi.json, and the app checked against it with schemathesis."""

from __future__ import annotations

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
from chathooks.redis_client import connect
from chathooks.platforms.livechat.adapter import ACTIONS
from tests.conftest import make_settings
from tests.helpers import SECRET, fixture


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


@pytest.mark.parametrize("method, path", [
    ("POST", "/webhooks/livechat"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/healthz")])
def test_answers_with_redis_down_conform_too(settings, method, path):
    app = create_app(settings, redis_client=connect("redis://127.0.0.1:1/0", timeout=0.2))
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]
    case = operation.Case(body=fixture("incoming_event")) if method == "POST" else operation.Case()
    response = case.call()
    assert response.status_code == (200 if path == "/healthz" else 503)
    case.validate_response(response, checks=CONFORMANCE)  # a 503 is the documented answer here


# One app for every generated request.
schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", create_app(make_settings(), redis_client=fakeredis.FakeRedis()))


@schema.parametrize()
@hypothesis.settings(max_examples=50, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_the_app_conforms_to_its_openapi_document(case):  # type: ignore[no-untyped-def]
    # Generated secrets are never accepted; put the real one in so the envelope and payload are exercised too.
    if isinstance(case.body, dict) and isinstance(case.body.get("secret_key"), str):
        case.body["secret_key"] = SECRET
    case.call_and_validate(checks=[not_a_server_error, *CONFORMANCE])
