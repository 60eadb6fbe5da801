"""AccountsClient against FakeAccounts: the code grant, refresh, revoke, the authorize URL, error classification."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from cryptography.fernet import Fernet

from chathooks.http import OutboundError
from chathooks.platforms.livechat.accounts import SERVICE, AccountsClient, needs_reauth
from chathooks.settings import MarketplaceSettings
from tests.fakes.accounts import FakeAccounts
from tests.fakes.http_server import Reply

CLIENT_ID = "4f0c2b9e8d7a6c5b4a3f2e1d0c9b8a7f"
SECRET = "client-secret-3e4f5a6b"
PUBLIC_URL = "https://hooks.example.com"
ORG = "7d1e0c3a-0000-4000-8000-00000000000a"


@pytest.fixture
def accounts():
    with FakeAccounts(CLIENT_ID, SECRET) as server:
        yield server


def market(accounts_url: str, secret: str = SECRET) -> MarketplaceSettings:
    return MarketplaceSettings(client_id=CLIENT_ID, client_secret=secret, public_url=PUBLIC_URL,
                               secret_keys=(Fernet.generate_key().decode(),), accounts_url=accounts_url)


@pytest.fixture
def client(accounts) -> AccountsClient:
    return AccountsClient(market(accounts.url), timeout=5)


def caught(call, *args) -> OutboundError:
    with pytest.raises(OutboundError) as info:
        call(*args)
    return info.value


def texts(error: OutboundError) -> list[str]:
    return [str(error), repr(error), error.message, json.dumps(error.to_dict())]


def form(request) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode()))


# The grants


def test_exchange_trades_a_code_for_tokens(accounts, client):
    code = accounts.authorize(ORG, redirect_uri=f"{PUBLIC_URL}/livechat/callback")
    grant = client.exchange(code)
    assert (grant["organization_id"], grant["account_id"], grant["expires_in"]) == (ORG, f"account-{ORG}", 28800)
    assert grant["access_token"].startswith("dal:") and grant["refresh_token"]
    assert accounts.exchanges == 1 and accounts.live_access_tokens(ORG) == [grant["access_token"]]
    (request,) = accounts.recorded("token")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request) == {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID,
                             "client_secret": SECRET, "redirect_uri": f"{PUBLIC_URL}/livechat/callback"}


def test_a_code_is_used_once(accounts, client):
    code = accounts.authorize(ORG)
    client.exchange(code)
    error = caught(client.exchange, code)
    assert (error.service, error.method, error.type, error.status, error.transient) == (
        SERVICE, "exchange_code", "invalid_grant", 400, False)


def test_refresh_gives_a_new_access_token(accounts, client):
    grant = client.exchange(accounts.authorize(ORG))
    fresh = client.refresh(grant["refresh_token"])
    assert fresh["access_token"] != grant["access_token"] and fresh["organization_id"] == ORG
    assert fresh["refresh_token"] == grant["refresh_token"]  # a server-side app's does not rotate
    assert accounts.refreshes == 1
    assert form(accounts.recorded("token")[-1]) == {"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                    "refresh_token": grant["refresh_token"],
                                                    "client_secret": SECRET}


def test_revoke_kills_the_grant(accounts, client):
    grant = client.exchange(accounts.authorize(ORG))
    client.revoke(grant["access_token"])
    assert accounts.live_access_tokens(ORG) == []
    assert accounts.recorded("revoke")[0].headers["Authorization"] == f"Bearer {grant['access_token']}"
    error = caught(client.refresh, grant["refresh_token"])
    assert error.type == "invalid_grant" and needs_reauth(error)
    # The refresh token died with it.
    assert caught(client.revoke, grant["refresh_token"]).type == "not_found"


def test_revoke_by_refresh_token(accounts, client):
    grant = client.exchange(accounts.authorize(ORG))
    client.revoke(grant["refresh_token"])
    assert accounts.live_access_tokens(ORG) == []


def test_authorize_url(client, accounts):
    url = urlsplit(client.authorize_url("st4te-xyz"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{accounts.url}/"
    assert parse_qs(url.query) == {"response_type": ["code"], "client_id": [CLIENT_ID],
                                   "redirect_uri": [f"{PUBLIC_URL}/livechat/callback"], "state": ["st4te-xyz"]}


def test_a_response_without_organization_is_invalid(accounts, client):
    accounts.fail("token", Reply(200, {"access_token": "dal:x-1234", "expires_in": 28800}))
    error = caught(client.exchange, accounts.authorize(ORG))
    assert (error.type, error.transient) == ("invalid_response", False)
    assert "organization_id" in error.message


# Error classification


def test_wrong_client_secret_needs_reauth(accounts):
    error = caught(AccountsClient(market(accounts.url, "wrong-secret-0000"), timeout=5).exchange,
                   accounts.authorize(ORG))
    assert (error.type, error.status, error.transient) == ("invalid_client", 401, False)
    assert needs_reauth(error)


@pytest.mark.parametrize("kind", ["invalid_grant", "unauthorized_client", "invalid_client", "missing_grant"])
def test_refused_grants_need_reauth(accounts, client, kind):
    accounts.fail("token", Reply(400, {"error": kind, "error_description": "no"}))
    error = caught(client.refresh, "refresh-0000")
    assert (error.type, error.transient, needs_reauth(error)) == (kind, False, True)


def test_old_error_names_are_read(accounts, client):
    accounts.fail("token", Reply(401, {"oauth_exception": "invalid_grant", "exception_description": "expired"}))
    error = caught(client.refresh, "refresh-0000")
    assert (error.type, error.message, needs_reauth(error)) == ("invalid_grant", "expired", True)


@pytest.mark.parametrize(("status", "body", "kind"), [
    (500, {"error": "server_error"}, "server_error"),
    (503, {"error": "temporarily_unavailable"}, "temporarily_unavailable"),
    (400, {"error": "temporarily_unavailable"}, "temporarily_unavailable"),
    (502, "<html>bad gateway</html>", "bad_gateway"),
    (429, {"error": "too_many_requests"}, "too_many_requests"),
    (429, None, "too_many_requests"),
])
def test_server_trouble_is_transient_not_reauth(accounts, client, status, body, kind):
    accounts.fail("token", Reply(status, body), retry_after=3 if status == 429 else None)
    error = caught(client.refresh, "refresh-0000")
    assert (error.type, error.transient, needs_reauth(error)) == (kind, True, False)
    if status == 429:
        assert error.retry_after == 3.0


def test_unreachable_accounts_server_is_transient(accounts, client):
    accounts.stop()
    error = caught(client.refresh, "refresh-0000")
    assert (error.type, error.transient, needs_reauth(error)) == ("connection", True, False)


def test_needs_reauth_is_only_for_the_accounts_server():
    assert not needs_reauth(OutboundError("livechat", "get_chat", "invalid_grant", ""))
    assert needs_reauth(OutboundError(SERVICE, "refresh_token", "missing_grant", ""))
    assert not needs_reauth(OutboundError(SERVICE, "refresh_token", "invalid_request", ""))


# Secrets


def test_the_secret_and_the_code_never_appear_in_an_error(accounts, client):
    code = accounts.authorize(ORG)
    echo = f"client_secret={SECRET} code={code}"
    accounts.fail("token", Reply(400, {"error": "invalid_request", "error_description": echo}))
    error = caught(client.exchange, code)
    assert error.type == "invalid_request"
    for text in texts(error):
        assert SECRET not in text and code not in text


def test_the_refresh_token_never_appears_in_an_error(accounts, client):
    refresh = "refresh-token-5c6d7e8f"
    accounts.fail("token", Reply(400, {"error": "invalid_grant", "error_description": f"{refresh} / {SECRET}"}))
    for text in texts(caught(client.refresh, refresh)):
        assert refresh not in text and SECRET not in text


def test_a_revoked_token_never_appears_in_an_error(accounts, client):
    token = "dal:access-token-1a2b3c4d"
    accounts.fail("revoke", Reply(404, {"error": "not_found", "error_description": f"no such token {token}"}))
    for text in texts(caught(client.revoke, token)):
        assert token not in text
