"""FakeLiveChat's organizations over HTTP: per-org tokens, chats, bots, routing statuses and license-webhooks state."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.fakes.livechat import Caller, FakeLiveChat

OTHER = "org-ffee0011"
OTHER_TOKEN = "fra:access-other-9d8c"
CHAT = {"id": "RX8QK2MZ1A", "thread": {"id": "RX8QK2MZ1B"}}
OTHER_CHAT = {"id": "SY9RL3NA2B", "thread": {"id": "SY9RL3NA2C"}}
MESSAGE = {"type": "message", "text": "An agent will be with you shortly."}


@pytest.fixture
def lc():
    with FakeLiveChat(api_version="3.6") as server:
        server.add_organization(OTHER, access_token=OTHER_TOKEN)
        server.seed_chat(CHAT)
        server.seed_chat(OTHER_CHAT, organization=OTHER)
        yield server


def call(lc: FakeLiveChat, api: str, method: str, token: str | None = None, **params) -> requests.Response:
    """Call ``method`` with Bearer ``token``, or with the default organization's PAT when None."""
    if token is None:
        basic = base64.b64encode(f"{lc.account_id}:{lc.pat}".encode()).decode()
        auth = f"Basic {basic}"
    else:
        auth = f"Bearer {token}"
    return requests.post(
        f"{lc.url}/v{lc.api_version}/{api}/action/{method}", json=params, headers={"Authorization": auth}, timeout=5,
    )


def error_type(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["type"]


def create_bot(lc: FakeLiveChat, token: str) -> dict[str, str]:
    response = call(lc, "configuration", "create_bot", token, name="chathooks")
    assert response.status_code == 200, response.text
    return response.json()


def issue_bot_token(lc: FakeLiveChat, bot: dict[str, str], organization_id: str) -> requests.Response:
    return call(
        lc, "configuration", "issue_bot_token", bot_id=bot["id"], client_id=lc.client_id,
        bot_secret=bot["secret"], organization_id=organization_id,
    )


def thread_calls(chat: dict) -> list[tuple[str, dict]]:
    """Every chat-scoped Agent API call, with its params for ``chat``."""
    ids = {"chat_id": chat["id"], "thread_id": chat["thread"]["id"]}
    return [
        ("get_chat", ids),
        ("send_event", {"chat_id": chat["id"], "event": MESSAGE}),
        ("tag_thread", ids | {"tag": "refund"}),
        ("untag_thread", ids | {"tag": "refund"}),
    ]


# Tokens and chats


def test_callers_still_build_positionally():
    assert Caller("agent@example.com", "pat") == Caller("agent@example.com", "pat", None)


def test_the_default_organization_is_served_as_before(lc):
    assert call(lc, "agent", "get_chat", chat_id=CHAT["id"]).status_code == 200
    assert call(lc, "agent", "get_chat", lc.access_token, chat_id=CHAT["id"]).status_code == 200
    assert lc.organization_of_token(lc.access_token) == lc.organization_id
    assert [c["id"] for c in lc.chats_of(lc.organization_id)] == [CHAT["id"]]
    assert [c["id"] for c in lc.chats_of(OTHER)] == [OTHER_CHAT["id"]]


@pytest.mark.parametrize("method, params", thread_calls(CHAT))
def test_one_organizations_token_is_refused_on_anothers_chat(lc, method, params):
    assert error_type(call(lc, "agent", method, OTHER_TOKEN, **params)) == (403, "authorization")
    other_params = dict(thread_calls(OTHER_CHAT))[method]
    assert error_type(call(lc, "agent", method, lc.access_token, **other_params)) == (403, "authorization")
    assert error_type(call(lc, "agent", method, None, **other_params)) == (403, "authorization")
    assert call(lc, "agent", method, OTHER_TOKEN, **other_params).status_code == 200


def test_an_organizations_agent_authors_its_events(lc):
    event_id = call(lc, "agent", "send_event", OTHER_TOKEN, chat_id=OTHER_CHAT["id"], event=MESSAGE).json()["event_id"]
    (event,) = lc.chat(OTHER_CHAT["id"])["thread"]["events"]
    assert (event["id"], event["author_id"]) == (event_id, f"agent@{OTHER}")


def test_withdrawn_and_unknown_tokens_fail_authentication(lc):
    lc.withdraw(OTHER_TOKEN)
    lc.withdraw("never-granted")
    assert error_type(call(lc, "agent", "get_chat", OTHER_TOKEN, chat_id=OTHER_CHAT["id"])) == (401, "authentication")
    assert error_type(call(lc, "agent", "get_chat", "dal:unknown", chat_id=CHAT["id"])) == (401, "authentication")
    assert lc.organization_of_token(OTHER_TOKEN) is None
    lc.withdraw(lc.access_token)
    assert error_type(call(lc, "agent", "get_chat", lc.access_token, chat_id=CHAT["id"])) == (401, "authentication")


def test_grant_adds_an_unknown_organization(lc):
    lc.grant("org-new", "dal:access-new")
    response = call(lc, "agent", "list_routing_statuses", "dal:access-new")
    assert response.json() == [{"agent_id": "agent@org-new", "status": "accepting_chats"}]
    assert lc.organization_of_token("dal:access-new") == "org-new"


# Routing statuses


def test_routing_statuses_are_per_organization(lc):
    default = call(lc, "agent", "list_routing_statuses").json()
    assert default == [
        {"agent_id": lc.agent_id, "status": "accepting_chats"},
        {"agent_id": lc.bot_id, "status": "accepting_chats"},
    ]
    other = call(lc, "agent", "list_routing_statuses", OTHER_TOKEN).json()
    assert other == [{"agent_id": f"agent@{OTHER}", "status": "accepting_chats"}]
    # Another organization's agents and bots are out of reach.
    refused = call(lc, "agent", "set_routing_status", OTHER_TOKEN, agent_id=lc.bot_id, status="offline")
    assert error_type(refused) == (404, "not_found")
    assert lc.routing_statuses[lc.bot_id] == "accepting_chats"


# Bots


def test_bots_are_created_and_listed_per_organization(lc):
    bot = create_bot(lc, OTHER_TOKEN)

    (stored,) = lc.bots_of(OTHER)
    assert (stored["id"], stored["secret"], stored["owner_client_id"]) == (bot["id"], bot["secret"], lc.client_id)
    assert [b["id"] for b in lc.bots_of(lc.organization_id)] == [lc.bot_id]
    assert [b["id"] for b in call(lc, "configuration", "list_bots", OTHER_TOKEN).json()] == [bot["id"]]
    assert [b["id"] for b in call(lc, "configuration", "list_bots").json()] == [lc.bot_id]
    other_statuses = call(lc, "agent", "list_routing_statuses", OTHER_TOKEN).json()
    assert {"agent_id": bot["id"], "status": "not_accepting_chats"} in other_statuses


def test_issue_bot_token_checks_the_bots_organization(lc):
    bot = create_bot(lc, OTHER_TOKEN)

    assert error_type(issue_bot_token(lc, bot, lc.organization_id)) == (401, "authentication")
    response = issue_bot_token(lc, bot, OTHER)

    assert response.status_code == 200
    token = response.json()["token"]
    assert lc.organization_of_token(token) == OTHER
    sent = call(lc, "agent", "send_event", token, chat_id=OTHER_CHAT["id"], event=MESSAGE)
    assert sent.status_code == 200
    assert lc.chat(OTHER_CHAT["id"])["thread"]["events"][-1]["author_id"] == bot["id"]
    refused = call(lc, "agent", "send_event", token, chat_id=CHAT["id"], event=MESSAGE)
    assert error_type(refused) == (403, "authorization")
    # The constructor's bot is the default organization's.
    default_bot = {"id": lc.bot_id, "secret": lc.bot_secret}
    assert error_type(issue_bot_token(lc, default_bot, OTHER)) == (401, "authentication")
    assert issue_bot_token(lc, default_bot, lc.organization_id).status_code == 200


def test_reset_bot_secret(lc):
    bot = create_bot(lc, OTHER_TOKEN)
    earlier = issue_bot_token(lc, bot, OTHER).json()["token"]
    assert error_type(call(lc, "configuration", "reset_bot_secret", id=bot["id"])) == (404, "not_found")

    response = call(lc, "configuration", "reset_bot_secret", OTHER_TOKEN, id=bot["id"])

    assert response.status_code == 200
    secret = response.json()["secret"]
    assert secret != bot["secret"] and lc.bots_of(OTHER)[0]["secret"] == secret
    assert error_type(issue_bot_token(lc, bot, OTHER)) == (401, "authentication")
    assert issue_bot_token(lc, bot | {"secret": secret}, OTHER).status_code == 200
    assert earlier in lc.bot_tokens  # bot tokens cannot be revoked
    assert error_type(call(lc, "configuration", "reset_bot_secret", OTHER_TOKEN)) == (400, "validation")


def test_delete_bot(lc):
    bot = create_bot(lc, OTHER_TOKEN)
    token = issue_bot_token(lc, bot, OTHER).json()["token"]
    assert error_type(call(lc, "configuration", "delete_bot", id=bot["id"])) == (404, "not_found")

    response = call(lc, "configuration", "delete_bot", OTHER_TOKEN, id=bot["id"])

    assert (response.status_code, response.json()) == (200, {})
    assert lc.bots_of(OTHER) == [] and bot["id"] not in lc.routing_statuses
    assert error_type(call(lc, "agent", "get_chat", token, chat_id=OTHER_CHAT["id"])) == (401, "authentication")
    assert error_type(call(lc, "configuration", "delete_bot", OTHER_TOKEN, id=bot["id"])) == (404, "not_found")
    assert [b["id"] for b in lc.bots_of(lc.organization_id)] == [lc.bot_id]


# License webhooks


def state(lc: FakeLiveChat, token: str | None = None, **params) -> bool:
    response = call(lc, "configuration", "get_license_webhooks_state", token, **params)
    assert response.status_code == 200, response.text
    return response.json()["license_webhooks_enabled"]


def test_license_webhooks_state_is_per_organization(lc):
    assert state(lc, OTHER_TOKEN) and state(lc, lc.access_token)

    assert call(lc, "configuration", "disable_license_webhooks", OTHER_TOKEN).status_code == 200

    assert not state(lc, OTHER_TOKEN)
    assert state(lc, lc.access_token) and state(lc, owner_client_id=lc.client_id)
    assert lc.license_webhooks_of(OTHER) == {lc.client_id: False} and lc.license_webhooks == {}
    # Per owner client too.
    assert state(lc, OTHER_TOKEN, owner_client_id="another-client")

    lc.set_license_webhooks(lc.organization_id, False)
    assert not state(lc, lc.access_token) and lc.license_webhooks == {lc.client_id: False}
    assert call(lc, "configuration", "enable_license_webhooks", owner_client_id=lc.client_id).status_code == 200
    assert state(lc, lc.access_token) and not state(lc, OTHER_TOKEN)


def test_x_author_id_names_only_a_bot_of_the_callers_organization():
    with FakeLiveChat(api_version="3.5") as lc:
        lc.add_organization(OTHER, access_token=OTHER_TOKEN)
        lc.seed_chat(OTHER_CHAT, organization=OTHER)
        as_bot = {"Authorization": f"Bearer {OTHER_TOKEN}", "X-Author-Id": lc.bot_id}
        url = f"{lc.url}/v3.5/agent/action/get_chat"
        response = requests.post(url, json={"chat_id": OTHER_CHAT["id"]}, headers=as_bot, timeout=5)
        assert error_type(response) == (401, "authentication")
