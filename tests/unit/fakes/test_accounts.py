"""FakeAccounts over HTTP: code and refresh grants, errors, the 25-token cap, info, revocation, the LiveChat link."""

from __future__ import annotations

import pytest
import requests

from tests.fakes.accounts import CODE_LIFETIME, DEFAULT_SCOPE, TOKEN_CAP, FakeAccounts
from tests.fakes.livechat import FakeLiveChat
from tests.helpers import Clock

SECRET = "client-secret-3e4f5a6b"
REDIRECT = "https://hooks.example.com/livechat/callback"
ORG = "7d1e0c3a-0000-4000-8000-00000000000a"
OTHER_ORG = "7d1e0c3a-0000-4000-8000-00000000000b"



@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def livechat():
    with FakeLiveChat() as server:
        yield server


@pytest.fixture
def accounts(livechat, clock):
    with FakeAccounts(livechat.client_id, SECRET, livechat=livechat, clock=clock) as server:
        yield server


def exchange(accounts: FakeAccounts, code: str, *, as_json: bool = False, **overrides: str) -> requests.Response:
    params = {
        "grant_type": "authorization_code", "code": code, "client_id": accounts.client_id,
        "client_secret": SECRET, "redirect_uri": REDIRECT,
    } | overrides
    body = {"json": params} if as_json else {"data": params}
    return requests.post(f"{accounts.url}/v2/token", **body, timeout=5)


def refresh(accounts: FakeAccounts, refresh_token: str, **overrides: str) -> requests.Response:
    params = {
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": accounts.client_id,
        "client_secret": SECRET,
    } | overrides
    return requests.post(f"{accounts.url}/v2/token", data=params, timeout=5)


def installed(accounts: FakeAccounts, organization_id: str = ORG) -> dict:
    """The token response of a fresh install of ``organization_id``."""
    response = exchange(accounts, accounts.authorize(organization_id))
    assert response.status_code == 200, response.text
    return response.json()


def info(accounts: FakeAccounts, token: str) -> requests.Response:
    return requests.get(f"{accounts.url}/v2/info", headers={"Authorization": f"Bearer {token}"}, timeout=5)


def revoke(accounts: FakeAccounts, token: str) -> requests.Response:
    return requests.delete(f"{accounts.url}/v2/token", headers={"Authorization": f"Bearer {token}"}, timeout=5)


def livechat_status(livechat: FakeLiveChat, token: str) -> int:
    """The status LiveChat answers an agent call made with ``token``."""
    response = requests.post(
        f"{livechat.url}/v{livechat.api_version}/agent/action/list_routing_statuses",
        json={}, headers={"Authorization": f"Bearer {token}"}, timeout=5,
    )
    return response.status_code


def assert_error(response: requests.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["error"], body["oauth_exception"]) == (name, name)
    assert body["error_description"] and body["exception_description"] == body["error_description"]


# Authorization-code grant


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_code_exchange(accounts, livechat, as_json):
    code = accounts.authorize(ORG, "account-b7ef", redirect_uri=REDIRECT)
    assert code.startswith("dal:code-")

    response = exchange(accounts, code, as_json=as_json)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "access_token", "account_id", "expires_in", "organization_id", "refresh_token", "scope", "token_type",
    }
    assert body["access_token"].startswith("dal:") and ":" not in body["refresh_token"]
    assert (body["account_id"], body["organization_id"], body["expires_in"]) == ("account-b7ef", ORG, 28800)
    assert (body["scope"], body["token_type"]) == (DEFAULT_SCOPE, "Bearer")
    content_type = accounts.recorded("token")[0].headers["Content-Type"]
    assert content_type == ("application/json" if as_json else "application/x-www-form-urlencoded")
    assert accounts.exchanges == 1 and accounts.live_access_tokens(ORG) == [body["access_token"]]
    # The token works on LiveChat, as an agent of its organization.
    assert livechat.organization_of_token(body["access_token"]) == ORG
    assert livechat_status(livechat, body["access_token"]) == 200


def test_a_code_is_single_use(accounts):
    code = accounts.authorize(ORG)
    assert exchange(accounts, code).status_code == 200
    assert_error(exchange(accounts, code), 400, "invalid_grant")
    assert accounts.exchanges == 1


def test_a_code_expires(accounts, clock):
    code = accounts.authorize(ORG)
    clock.now += CODE_LIFETIME
    assert_error(exchange(accounts, code), 400, "invalid_grant")
    assert_error(exchange(accounts, "dal:code-unknown"), 400, "invalid_grant")


def test_the_redirect_uri_must_match_the_authorization_requests(accounts):
    code = accounts.authorize(ORG, redirect_uri=REDIRECT)
    assert_error(exchange(accounts, code, redirect_uri=REDIRECT + "/"), 400, "invalid_grant")
    assert exchange(accounts, code).status_code == 200


def test_wrong_client_credentials(accounts):
    code = accounts.authorize(ORG)
    assert_error(exchange(accounts, code, client_secret="wrong"), 401, "invalid_client")
    assert_error(exchange(accounts, code, client_id="someone-else"), 401, "invalid_client")
    assert accounts.live_access_tokens() == [] and accounts.exchanges == 0


def test_missing_params_and_unknown_grant_types(accounts):
    code = accounts.authorize(ORG)
    token_url = f"{accounts.url}/v2/token"
    response = requests.post(token_url, data={"grant_type": "authorization_code", "code": code}, timeout=5)
    assert_error(response, 422, "invalid_request")
    assert_error(requests.post(token_url, json={}, timeout=5), 422, "invalid_request")
    assert_error(requests.post(token_url, json=["grant_type"], timeout=5), 422, "invalid_request")
    assert_error(exchange(accounts, code, grant_type="password"), 400, "unsupported_grant_type")


# Refresh-token grant


def test_refresh_answers_a_new_access_token_and_the_same_refresh_token(accounts, livechat, clock):
    first = installed(accounts)
    clock.now += 60

    response = refresh(accounts, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] == first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (second["organization_id"], second["account_id"]) == (ORG, first["account_id"])
    assert accounts.refreshes == 1 and accounts.exchanges == 1
    assert accounts.live_access_tokens() == [first["access_token"], second["access_token"]]
    assert livechat_status(livechat, second["access_token"]) == 200


def test_refresh_errors(accounts):
    tokens = installed(accounts)
    assert_error(refresh(accounts, tokens["refresh_token"], client_secret="wrong"), 401, "invalid_client")
    assert_error(refresh(accounts, "no-such-refresh-token"), 400, "invalid_grant")
    assert_error(refresh(accounts, ""), 422, "invalid_request")
    assert accounts.refreshes == 0


def test_the_26th_access_token_revokes_the_oldest(accounts, livechat):
    first = installed(accounts)
    other = installed(accounts, OTHER_ORG)  # another account: its tokens do not count
    issued = [first["access_token"]] + [
        refresh(accounts, first["refresh_token"]).json()["access_token"] for _ in range(TOKEN_CAP)
    ]

    assert accounts.live_access_tokens(ORG) == issued[1:]
    assert accounts.live_access_tokens(OTHER_ORG) == [other["access_token"]]
    assert_error(info(accounts, issued[0]), 401, "invalid_token")
    assert livechat_status(livechat, issued[0]) == 401
    assert livechat.organization_of_token(issued[0]) is None
    assert livechat_status(livechat, issued[-1]) == 200
    # The cap takes access tokens only: the refresh token still works.
    newest = refresh(accounts, first["refresh_token"]).json()["access_token"]
    assert accounts.live_access_tokens(ORG) == issued[2:] + [newest]


# Info


def test_info(accounts, clock):
    tokens = installed(accounts)
    clock.now += 100

    by_header = info(accounts, tokens["access_token"])
    by_query = requests.get(f"{accounts.url}/v2/info", params={"code": tokens["access_token"]}, timeout=5)

    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json() == by_query.json() == {
        "access_token": tokens["access_token"], "account_id": tokens["account_id"], "client_id": accounts.client_id,
        "expires_in": 28800 - 100, "organization_id": ORG, "scope": DEFAULT_SCOPE, "token_type": "Bearer",
    }
    assert [r.route for r in accounts.recorded()] == ["token", "info", "info"]
    assert_error(info(accounts, "dal:unknown"), 401, "invalid_token")
    assert_error(requests.get(f"{accounts.url}/v2/info", timeout=5), 401, "invalid_token")


def test_access_tokens_expire(accounts, livechat, clock):
    tokens = installed(accounts)
    clock.now += accounts.token_lifetime

    assert_error(info(accounts, tokens["access_token"]), 401, "invalid_token")
    assert livechat_status(livechat, tokens["access_token"]) == 401
    assert refresh(accounts, tokens["refresh_token"]).status_code == 200


def test_expire_access_token(accounts, livechat):
    tokens = installed(accounts)
    accounts.expire_access_token(tokens["access_token"])

    assert livechat_status(livechat, tokens["access_token"]) == 401
    assert accounts.live_access_tokens() == []
    assert refresh(accounts, tokens["refresh_token"]).status_code == 200


# Revocation


def test_revoking_an_access_token_revokes_its_refresh_token(accounts, livechat):
    tokens = installed(accounts)
    refreshed = refresh(accounts, tokens["refresh_token"]).json()

    response = revoke(accounts, tokens["access_token"])

    assert (response.status_code, response.json()) == (200, {})
    assert accounts.recorded("revoke")[0].method == "DELETE"
    assert_error(refresh(accounts, tokens["refresh_token"]), 400, "invalid_grant")
    assert accounts.live_access_tokens() == []
    assert livechat_status(livechat, tokens["access_token"]) == 401
    assert livechat_status(livechat, refreshed["access_token"]) == 401
    assert revoke(accounts, tokens["access_token"]).status_code == 404


def test_revoking_a_refresh_token_revokes_its_access_tokens(accounts, livechat):
    tokens = installed(accounts)
    other = installed(accounts, OTHER_ORG)

    response = requests.delete(f"{accounts.url}/v2/token", params={"code": tokens["refresh_token"]}, timeout=5)

    assert response.status_code == 200
    assert accounts.live_access_tokens() == [other["access_token"]]
    assert livechat_status(livechat, tokens["access_token"]) == 401
    assert_error(refresh(accounts, tokens["refresh_token"]), 400, "invalid_grant")
    unknown = requests.delete(f"{accounts.url}/v2/token", params={"code": "nothing"}, timeout=5)
    assert_error(unknown, 404, "not_found")


def test_revoke_grant(accounts, livechat):
    tokens = installed(accounts)
    other = installed(accounts, OTHER_ORG)

    accounts.revoke_grant(ORG)

    assert_error(refresh(accounts, tokens["refresh_token"]), 400, "invalid_grant")
    assert livechat_status(livechat, tokens["access_token"]) == 401
    assert accounts.live_access_tokens() == [other["access_token"]]
    assert refresh(accounts, other["refresh_token"]).status_code == 200
    # Consent given again: a new grant.
    assert installed(accounts)["refresh_token"] != tokens["refresh_token"]


def test_without_a_linked_livechat():
    with FakeAccounts("client", "secret", region="fra") as accounts:
        code = accounts.authorize(ORG)
        assert code.startswith("fra:code-")
        body = exchange(accounts, code, client_id="client", client_secret="secret").json()
        assert body["access_token"].startswith("fra:")
        assert revoke(accounts, body["access_token"]).status_code == 200
