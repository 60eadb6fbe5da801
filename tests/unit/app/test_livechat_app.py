"""Installing chathooks as a LiveChat Marketplace app (SPEC §11): /livechat/install, /livechat/callback,
/livechat/app-webhooks/<token>, and the ingress's gate for organizations that uninstalled it."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import fakeredis
import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.settings import Settings
from tests.conftest import make_settings
from tests.fakes.accounts import FakeAccounts
from tests.fakes.http_server import Reply
from tests.helpers import SECRET, fixture
from tests.unit.app.conftest import field_errors, queue_state_of, queued

CLIENT_ID = "client-7a6b5c4d"
CLIENT_SECRET = "client-secret-0f1e2d3c4b5a"
APP_TOKEN = "app-hooks-token-93c1e7"  # LIVECHAT_APP_WEBHOOK_TOKEN, the App Webhooks' path token
PUBLIC_URL = "https://hooks.example.com"
REDIRECT_URI = f"{PUBLIC_URL}/livechat/callback"
SECRET_KEY = Fernet.generate_key().decode()
ORG = "7d1e0c3a-5b2f-4e6a-9c8d-0f1e2d3c4b5a"  # the organization of the App Webhook fixtures
OTHER_ORG = "0c9b8a7f-6e5d-4c3b-8a19-0f1e2d3c4b5a"
LICENSE = "104130623"
HOOK = f"/livechat/app-webhooks/{APP_TOKEN}"
UNINSTALLED_LINE = 'chathooks_webhooks_uninstalled_total{source="livechat"} 1.0'


def marketplace_env(accounts_url: str) -> dict[str, str]:
    return {"LIVECHAT_CLIENT_ID": CLIENT_ID, "LIVECHAT_CLIENT_SECRET": CLIENT_SECRET,
            "CHATHOOKS_PUBLIC_URL": PUBLIC_URL, "LIVECHAT_APP_WEBHOOK_TOKEN": APP_TOKEN,
            "CHATHOOKS_SECRET_KEY": SECRET_KEY, "LIVECHAT_ACCOUNTS_URL": accounts_url}


@pytest.fixture
def accounts():  # type: ignore[no-untyped-def]
    with FakeAccounts(CLIENT_ID, CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def market(accounts: FakeAccounts) -> Settings:
    return make_settings(**marketplace_env(accounts.url))


@pytest.fixture
def market_app(market: Settings, fake_redis: fakeredis.FakeRedis) -> Flask:
    return create_app(market, redis_client=fake_redis)


@pytest.fixture
def market_client(market_app: Flask) -> FlaskClient:
    return market_app.test_client()


@pytest.fixture
def tenants(market: Settings, fake_redis: fakeredis.FakeRedis) -> TenantStore:
    return TenantStore(fake_redis, market.key_prefix, (SECRET_KEY,))


@pytest.fixture
def market_queue(market: Settings, fake_redis: fakeredis.FakeRedis):  # type: ignore[no-untyped-def]
    return queue_state_of(fake_redis, market)


def state_key(settings: Settings, state: str) -> str:
    return f"{settings.key_prefix}livechat:install-state:{state}"


def start_install(client: FlaskClient) -> str:
    """GET /livechat/install; the state it sent the browser off with."""
    response = client.get("/livechat/install")
    assert response.status_code == 302, response.get_data(as_text=True)
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


def callback(client: FlaskClient, code: str | None, state: str | None = None):  # type: ignore[no-untyped-def]
    query = {k: v for k, v in (("code", code), ("state", state)) if v is not None}
    return client.get("/livechat/callback", query_string=query)


def install(client: FlaskClient, accounts: FakeAccounts, org: str = ORG):  # type: ignore[no-untyped-def]
    """The whole browser flow for ``org``: /install, the accounts server's code, /callback."""
    state = start_install(client)
    response = callback(client, accounts.authorize(org, redirect_uri=REDIRECT_URI), state)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def app_webhook(client: FlaskClient, name: str, token: str = APP_TOKEN, **changes: Any):  # type: ignore[no-untyped-def]
    return client.post(f"/livechat/app-webhooks/{token}", json={**fixture(name, "livechat_app"), **changes})


def livechat_webhook(client: FlaskClient, org: str):  # type: ignore[no-untyped-def]
    body = fixture("incoming_event")
    body["organization_id"] = org
    return client.post("/webhooks/livechat", json=body)


def actions(fake_redis: fakeredis.FakeRedis, settings: Settings) -> list[tuple[str, str | None]]:
    """(action, organization of its first event) of every queued delivery, sorted."""
    return sorted((m["action"], m["events"][0].get("organization")) for m in queued(fake_redis, settings))


def assert_page(response, status: int) -> str:  # type: ignore[no-untyped-def]
    """A small HTML page with ``status``; returns its text."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert text.startswith("<!doctype html>")
    return text


# --- multi-license off -------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("GET", "/livechat/install"),
    ("GET", "/livechat/callback?code=dal:code-1&state=s"),
    ("POST", "/livechat/app-webhooks/any-token"),
])
def test_every_route_is_a_json_404_naming_the_client_secret_while_multi_license_is_off(
        client, queue_state, fake_redis, settings, method, path):
    body = fixture("application_installed", "livechat_app") if method == "POST" else None
    response = client.open(path, method=method, json=body)
    assert response.status_code == 404 and response.is_json
    assert "LIVECHAT_CLIENT_SECRET" in response.json["error"]
    assert queue_state() == (0, frozenset())
    assert fake_redis.keys(f"{settings.key_prefix}tenant*") == []


# --- GET /livechat/install -----------------------------------------------------------------------


def test_install_redirects_to_the_accounts_server_asking_for_a_code_back_at_the_callback(
        market_client, accounts, market, fake_redis):
    response = market_client.get("/livechat/install")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == accounts.url
    query = dict(parse_qsl(location.query, strict_parsing=True))
    assert set(query) == {"response_type", "client_id", "redirect_uri", "state"}
    assert (query["response_type"], query["client_id"], query["redirect_uri"]) == ("code", CLIENT_ID, REDIRECT_URI)
    assert len(query["state"]) >= 16
    assert accounts.recorded() == []  # the browser goes there, not the ingress


def test_install_stores_its_state_in_redis_for_a_limited_time(market_client, market, fake_redis):
    state = start_install(market_client)
    assert fake_redis.get(state_key(market, state)) is not None
    assert 0 < fake_redis.ttl(state_key(market, state)) <= 600


def test_every_install_gets_its_own_state(market_client):
    assert len({start_install(market_client) for _ in range(5)}) == 5


# --- GET /livechat/callback ----------------------------------------------------------------------


def test_callback_with_a_code_and_its_state_installs_the_organization(
        market_client, accounts, market, fake_redis, tenants):
    state = start_install(market_client)
    response = callback(market_client, accounts.authorize(ORG, redirect_uri=REDIRECT_URI), state)
    assert "Installed" in assert_page(response, 200)
    assert accounts.exchanges == 1
    tenant = tenants.get(ORG)
    assert tenant is not None and tenant.status is Status.PENDING
    assert tenant.access_token == accounts.live_access_tokens(ORG)[0]
    assert tenant.refresh_token and tenant.region == "dal"
    assert fake_redis.get(state_key(market, state)) is None  # used up


def test_callback_exchanges_the_code_with_the_app_credentials_and_the_redirect_uri(market_client, accounts):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    callback(market_client, code, start_install(market_client))
    [request] = accounts.recorded("token")
    assert dict(parse_qsl(request.body.decode())) == {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def test_callback_stores_the_tokens_encrypted(market_client, accounts, market, fake_redis, tenants):
    install(market_client, accounts)
    tenant = tenants.get(ORG)
    raw = fake_redis.hgetall(f"{market.key_prefix}tenant:{ORG}")
    assert raw[b"status"] == b"pending"
    everything = b"\n".join([*raw.keys(), *raw.values()])
    for token in (tenant.access_token, tenant.refresh_token):
        assert token and token.encode() not in everything
        assert token.split(":")[-1].encode() not in everything  # not even without its region
    assert Fernet(SECRET_KEY).decrypt(raw[b"access_token"]).decode() == tenant.access_token


def test_callback_queues_the_organizations_provisioning_once(market_client, accounts, market, fake_redis, tenants):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    callback(market_client, code, start_install(market_client))
    assert actions(fake_redis, market) == [("tenant_provision", ORG)]
    tenant = tenants.get(ORG)
    raw_queue = b"".join(fake_redis.lrange(market.queue, 0, -1))
    for secret in (code, tenant.access_token, tenant.refresh_token, CLIENT_SECRET):
        assert secret.encode() not in raw_queue
    # The queue carries base64-encoded bodies: look inside them too.
    assert not any(s in json.dumps(queued(fake_redis, market)) for s in (code, tenant.access_token))


@pytest.mark.parametrize("state", [None, ""])  # the Marketplace sends none, or an empty one
def test_callback_without_a_state_is_a_marketplace_install_and_succeeds(
        market_client, accounts, market, fake_redis, tenants, state):
    response = callback(market_client, accounts.authorize(ORG, redirect_uri=REDIRECT_URI), state)
    assert_page(response, 200)
    assert tenants.status(ORG) is Status.PENDING
    assert actions(fake_redis, market) == [("tenant_provision", ORG)]


@pytest.mark.parametrize("code", [None, "", "   "])
def test_callback_without_a_code_is_400_and_never_calls_the_accounts_server(
        market_client, accounts, market_queue, tenants, code):
    state = start_install(market_client)
    assert_page(callback(market_client, code, state), 400)
    assert accounts.recorded() == []
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


def test_callback_with_an_unknown_state_is_400_and_never_exchanges_the_code(
        market_client, accounts, market_queue, tenants):
    start_install(market_client)
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    assert_page(callback(market_client, code, "not-a-state-we-made"), 400)
    assert accounts.exchanges == 0 and accounts.recorded("token") == []
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


def test_callback_with_a_used_state_is_400_and_never_exchanges_the_second_code(
        market_client, accounts, market, fake_redis, tenants):
    state = start_install(market_client)
    assert_page(callback(market_client, accounts.authorize(ORG, redirect_uri=REDIRECT_URI), state), 200)
    again = callback(market_client, accounts.authorize(OTHER_ORG, redirect_uri=REDIRECT_URI), state)
    assert_page(again, 400)
    assert accounts.exchanges == 1
    assert tenants.status(OTHER_ORG) is None
    assert actions(fake_redis, market) == [("tenant_provision", ORG)]


@pytest.mark.parametrize("refusal", ["unknown code", "used code", "other redirect_uri", "server error",
                                     "no organization in the answer"])
def test_callback_with_a_code_the_accounts_server_refuses_is_502(
        market_client, accounts, market_queue, tenants, refusal):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    if refusal == "unknown code":
        code = "dal:code-never-issued"
    elif refusal == "used code":
        callback(market_client, code)
        market_queue_before = market_queue()
    elif refusal == "other redirect_uri":
        code = accounts.authorize(ORG, redirect_uri="https://elsewhere.example.com/callback")
    elif refusal == "server error":
        accounts.fail("token", Reply(500, {"error": "server_error", "error_description": "down for a moment"}))
    else:
        accounts.fail("token", Reply(200, {"access_token": "dal:abc", "token_type": "Bearer"}))
    text = assert_page(callback(market_client, code, start_install(market_client)), 502)
    assert "Not installed" in text
    if refusal == "used code":
        assert market_queue() == market_queue_before
    else:
        assert market_queue() == (0, frozenset())
        assert tenants.all() == []


def test_callback_while_the_accounts_server_is_down_is_502(market_client, accounts, market_queue, tenants):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    state = start_install(market_client)
    accounts.stop()
    assert_page(callback(market_client, code, state), 502)
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


def test_callback_takes_a_url_encoded_code(market_client, accounts, tenants):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    assert code.startswith("dal:")
    query = f"code={quote(code, safe='')}&state={start_install(market_client)}"
    assert "dal%3A" in query
    assert_page(market_client.get(f"/livechat/callback?{query}"), 200)
    assert accounts.exchanges == 1
    assert tenants.status(ORG) is Status.PENDING


def test_callback_after_an_uninstall_reinstalls_the_organization(market_client, accounts, tenants):
    install(market_client, accounts)
    app_webhook(market_client, "application_uninstalled")
    assert tenants.status(ORG) is Status.UNINSTALLED
    install(market_client, accounts)
    assert tenants.status(ORG) is Status.PENDING


# --- POST /livechat/app-webhooks/<token> ---------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token", APP_TOKEN[:-1], APP_TOKEN + "x"])
def test_app_webhook_with_a_wrong_path_token_is_a_json_404(market_client, market_queue, tenants, token):
    response = app_webhook(market_client, "application_installed", token=token)
    assert response.status_code == 404 and response.is_json
    assert APP_TOKEN not in response.get_data(as_text=True)
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


def test_application_installed_makes_a_pending_tenant_with_its_license(market_client, market_queue, tenants):
    response = app_webhook(market_client, "application_installed")
    assert (response.status_code, response.json) == (200, {"status": "handled"})
    tenant = tenants.get(ORG)
    assert (tenant.status, tenant.license_id) == (Status.PENDING, LICENSE)
    assert tenant.access_token is None
    assert market_queue() == (0, frozenset())  # provisioning waits for the callback's tokens


def test_application_installed_after_the_callback_keeps_the_tokens_and_adds_the_license(
        market_client, accounts, tenants):
    install(market_client, accounts)
    assert app_webhook(market_client, "application_installed").json == {"status": "handled"}
    tenant = tenants.get(ORG)
    assert tenant.license_id == LICENSE
    assert tenant.access_token == accounts.live_access_tokens(ORG)[0]


def test_application_uninstalled_marks_a_known_tenant_uninstalled_and_queues_its_clean_up(
        market_client, accounts, market, fake_redis, tenants):
    install(market_client, accounts)
    response = app_webhook(market_client, "application_uninstalled")
    assert (response.status_code, response.json) == (200, {"status": "handled"})
    assert tenants.status(ORG) is Status.UNINSTALLED
    assert actions(fake_redis, market) == [("tenant_provision", ORG), ("tenant_uninstall", ORG)]


def test_application_uninstalled_of_a_tenant_known_only_from_application_installed_queues_its_clean_up(
        market_client, market, fake_redis, tenants):
    app_webhook(market_client, "application_installed")
    assert app_webhook(market_client, "application_uninstalled").json == {"status": "handled"}
    assert tenants.status(ORG) is Status.UNINSTALLED
    assert actions(fake_redis, market) == [("tenant_uninstall", ORG)]


def test_a_retried_application_uninstalled_queues_its_clean_up_once(market_client, market, fake_redis):
    app_webhook(market_client, "application_installed")
    for _ in range(3):
        assert app_webhook(market_client, "application_uninstalled").status_code == 200
    assert actions(fake_redis, market) == [("tenant_uninstall", ORG)]


def test_application_uninstalled_for_an_unknown_organization_is_ignored(market_client, market_queue, tenants):
    response = app_webhook(market_client, "application_uninstalled")
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


@pytest.mark.parametrize("name, changes", [
    ("payment_collected", {}),
    ("application_installed", {"event": "application_updated"}),
    ("application_installed", {"organizationID": None}),  # older App Webhooks name no organization
])
def test_other_app_webhooks_are_200_ignored(market_client, market_queue, tenants, name, changes):
    body = {k: v for k, v in {**fixture(name, "livechat_app"), **changes}.items() if v is not None}
    response = market_client.post(HOOK, json=body)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


@pytest.mark.parametrize("data", [b"{not json", b"", b"[1, 2]", b'{"event": "a", "event": "b"}'])
def test_app_webhook_that_is_not_a_json_object_is_400(market_client, market_queue, data):
    response = market_client.post(HOOK, data=data, content_type="application/json")
    assert response.status_code == 400 and response.is_json
    assert field_errors(response, "body")
    assert market_queue() == (0, frozenset())


def test_app_webhook_that_is_not_json_by_content_type_is_415(market_client, market_queue):
    response = market_client.post(HOOK, data=json.dumps(fixture("application_installed", "livechat_app")),
                                  content_type="text/plain")
    assert response.status_code == 415 and response.is_json
    assert market_queue() == (0, frozenset())


@pytest.mark.parametrize("event", ["<missing>", "", None, 7, ["application_installed"]])
def test_app_webhook_without_an_event_is_400_naming_the_field(market_client, market_queue, tenants, event):
    body = fixture("application_installed", "livechat_app")
    if event == "<missing>":
        del body["event"]
    else:
        body["event"] = event
    response = market_client.post(HOOK, json=body)
    assert field_errors(response, "event")
    assert market_queue() == (0, frozenset())
    assert tenants.all() == []


@pytest.mark.parametrize("field, value", [("organizationID", 7), ("organizationID", ""), ("licenseID", True),
                                          ("licenseID", {"id": 1})])
def test_app_webhook_with_a_malformed_organization_or_license_is_400_naming_it(
        market_client, market_queue, tenants, field, value):
    response = app_webhook(market_client, "application_installed", **{field: value})
    assert field_errors(response, field)
    assert tenants.all() == []


@pytest.mark.parametrize("date", ["2026-12-01T08:00:00.000+00:00", None])
def test_an_uninstall_after_a_reinstall_queues_a_clean_up_again(market_client, market, fake_redis, date):
    first = fixture("application_uninstalled", "livechat_app")
    second = {**first, "date": date}
    if date is None:
        first.pop("date")
        second.pop("date")
    app_webhook(market_client, "application_installed")
    assert market_client.post(HOOK, json=first).json == {"status": "handled"}
    app_webhook(market_client, "application_installed")
    assert market_client.post(HOOK, json=second).json == {"status": "handled"}
    assert actions(fake_redis, market) == [("tenant_uninstall", ORG)] * 2


# --- the gate: organizations that uninstalled the app -------------------------------------------


def test_livechat_webhook_of_an_uninstalled_organization_is_ignored_and_counted(
        market_client, accounts, market_queue):
    install(market_client, accounts)
    app_webhook(market_client, "application_uninstalled")
    before = market_queue()
    response = livechat_webhook(market_client, ORG)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert market_queue() == before  # neither queued nor marked seen
    assert UNINSTALLED_LINE in market_client.get("/metrics").get_data(as_text=True).splitlines()


def test_another_organizations_webhook_is_still_queued_after_an_uninstall(market_client, accounts, market, fake_redis):
    install(market_client, accounts)
    app_webhook(market_client, "application_uninstalled")
    response = livechat_webhook(market_client, OTHER_ORG)
    assert response.json["status"] == "queued"
    assert ("incoming_event", OTHER_ORG) in actions(fake_redis, market)


def test_livechat_webhooks_of_installed_and_pending_organizations_are_queued(
        market_client, accounts, market, fake_redis):
    install(market_client, accounts)  # pending until provisioned: the worker parks or acts, the ingress queues
    assert livechat_webhook(market_client, ORG).json["status"] == "queued"
    assert "chathooks_webhooks_uninstalled_total" not in _samples(market_client)


def test_a_reinstalled_organizations_webhooks_are_queued_again(market_client, accounts, market, fake_redis):
    install(market_client, accounts)
    app_webhook(market_client, "application_uninstalled")
    assert livechat_webhook(market_client, ORG).json == {"status": "ignored"}
    app_webhook(market_client, "application_installed")
    assert livechat_webhook(market_client, ORG).json["status"] == "queued"


def test_the_gate_is_off_while_multi_license_is_off(client, settings, fake_redis):
    assert livechat_webhook(client, ORG).json["status"] == "queued"


def _samples(client: FlaskClient) -> str:
    """The /metrics sample lines (HELP and TYPE left out)."""
    text = client.get("/metrics").get_data(as_text=True)
    return "\n".join(line for line in text.splitlines() if line and not line.startswith("#"))


# --- Redis unreachable --------------------------------------------------------------------------


@pytest.fixture
def redis_down(market: Settings, accounts: FakeAccounts):  # type: ignore[no-untyped-def]
    """A client whose Redis goes away after the app started; and the accounts server."""
    server = fakeredis.FakeServer()
    client = create_app(market, redis_client=fakeredis.FakeRedis(server=server)).test_client()
    server.connected = False
    return client


def test_install_while_redis_is_down_is_a_json_503(redis_down, accounts):
    response = redis_down.get("/livechat/install")
    assert response.status_code == 503 and response.is_json
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("with_state", [False, True])
def test_callback_while_redis_is_down_is_a_503_page(redis_down, accounts, with_state):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT_URI)
    response = callback(redis_down, code, "some-state" if with_state else None)
    assert_page(response, 503)


def test_callback_with_a_state_while_redis_is_down_never_exchanges_the_code(redis_down, accounts):
    callback(redis_down, accounts.authorize(ORG, redirect_uri=REDIRECT_URI), "some-state")
    assert accounts.exchanges == 0


@pytest.mark.parametrize("name", ["application_installed", "application_uninstalled"])
def test_app_webhook_while_redis_is_down_is_a_json_503_so_livechat_retries(redis_down, name):
    response = app_webhook(redis_down, name)
    assert response.status_code == 503 and response.is_json
    assert response.headers["Retry-After"]


def test_livechat_webhook_while_the_tenant_store_is_down_is_a_json_503(redis_down):
    response = livechat_webhook(redis_down, ORG)
    assert response.status_code == 503 and response.is_json


# --- /openapi.json -------------------------------------------------------------------------------


@pytest.mark.parametrize("multi_license", [True, False])
def test_openapi_documents_the_three_routes(market_client, client, multi_license):
    paths = (market_client if multi_license else client).get("/openapi.json").json["paths"]
    assert set(paths["/livechat/install"]) == {"get"}
    assert set(paths["/livechat/callback"]) == {"get"}
    assert set(paths["/livechat/app-webhooks/{token}"]) == {"post"}
    assert {"200", "400", "502"} <= set(paths["/livechat/callback"]["get"]["responses"])
    assert {"200", "400", "404"} <= set(paths["/livechat/app-webhooks/{token}"]["post"]["responses"])
    assert "302" in paths["/livechat/install"]["get"]["responses"]


def test_the_openapi_document_names_no_secret(market_client):
    text = market_client.get("/openapi.json").get_data(as_text=True)
    for secret in (CLIENT_SECRET, APP_TOKEN, SECRET_KEY):
        assert secret not in text


# --- secrets ------------------------------------------------------------------------------------


def test_no_secret_reaches_a_log_record_or_a_response_body(market_app, accounts, fake_redis, tenants, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="chathooks")  # create_app sets it to INFO
    client = market_app.test_client()
    codes: list[str] = []
    answers: list[tuple[int, str]] = []

    def keep(response) -> None:  # type: ignore[no-untyped-def]
        answers.append((response.status_code, f"{response.get_data(as_text=True)}\n{dict(response.headers)}"))

    keep(client.get("/livechat/install"))
    for org in (ORG, OTHER_ORG):
        codes.append(accounts.authorize(org, redirect_uri=REDIRECT_URI))
        keep(callback(client, codes[-1], start_install(client)))
    keep(callback(client, codes[0]))  # used: refused
    codes.append(accounts.authorize(ORG, redirect_uri="https://elsewhere.example.com/"))
    keep(callback(client, codes[-1]))  # refused: another redirect_uri
    keep(callback(client, "dal:code-never-issued", "bad-state"))
    keep(app_webhook(client, "application_installed"))
    keep(app_webhook(client, "application_installed", token="wrong-token"))
    keep(app_webhook(client, "application_uninstalled"))
    keep(livechat_webhook(client, ORG))
    keep(livechat_webhook(client, OTHER_ORG))
    keep(client.get("/metrics"))
    codes.append(accounts.authorize(ORG, redirect_uri=REDIRECT_URI))
    accounts.stop()
    keep(callback(client, codes[-1]))  # the accounts server is down
    assert [status for status, _ in answers] == [302, 200, 200, 502, 502, 400, 200, 404, 200, 200, 200, 200, 502]

    tokens = [t for org in (ORG, OTHER_ORG) for t in (tenants.get(org).access_token, tenants.get(org).refresh_token)]
    assert all(tokens)
    secrets = [CLIENT_SECRET, SECRET_KEY, APP_TOKEN, SECRET, *codes, *tokens]
    secrets += [c.split(":", 1)[1] for c in codes]  # a code without its region prefix is still the code
    secrets += [t.split(":", 1)[1] for t in tokens if ":" in t]
    assert caplog.records  # the flows did log
    logged = caplog.text + "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for secret in secrets:
        assert secret not in logged, f"{secret!r} logged"
        for _, answer in answers:
            assert secret not in answer, f"{secret!r} in a response"


def test_an_uninstall_naming_only_the_license_finds_its_organization(market_client, market, fake_redis):
    assert app_webhook(market_client, "application_installed").json == {"status": "handled"}
    older = {k: v for k, v in fixture("application_uninstalled", "livechat_app").items() if k != "organizationID"}
    response = market_client.post(f"/livechat/app-webhooks/{APP_TOKEN}", json=older)
    assert response.json == {"status": "handled"}
    assert TenantStore(fake_redis, market.key_prefix, market.marketplace.secret_keys).status(ORG) is Status.UNINSTALLED


def test_multi_license_mode_without_an_app_webhook_token_is_told_at_start(accounts, fake_redis, caplog):
    create_app(make_settings(**marketplace_env(accounts.url)), redis_client=fake_redis)
    assert "LIVECHAT_APP_WEBHOOK_TOKEN" not in caplog.text
    create_app(make_settings(**marketplace_env(accounts.url) | {"LIVECHAT_APP_WEBHOOK_TOKEN": ""}),
               redis_client=fake_redis)
    assert "without LIVECHAT_APP_WEBHOOK_TOKEN" in caplog.text and f"{PUBLIC_URL}/livechat/app-webhooks/" in caplog.text
