"""`chathooks livechat setup` against the fake LiveChat Configuration and Agent APIs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace

import pytest

from chathooks.platforms.livechat.client import LiveChatClient
from chathooks.platforms.livechat.setup import ACTIONS, setup
from chathooks.settings import ConfigError
from tests.conftest import make_settings
from tests.fakes.livechat import FakeLiveChat

URL = "https://hooks.example.com/webhooks/livechat"


@pytest.fixture
def livechat() -> Iterator[FakeLiveChat]:
    with FakeLiveChat() as fake:
        yield fake


def settings_for(fake: FakeLiveChat, **env: str):  # type: ignore[no-untyped-def]
    base = make_settings(LIVECHAT_API_URL=fake.url, LIVECHAT_ACCOUNT_ID=fake.account_id, LIVECHAT_PAT=fake.pat,
                         LIVECHAT_CLIENT_ID=fake.client_id, **env)
    return base


def test_setup_registers_every_webhook_once_and_readies_the_bot(livechat):
    livechat.routing_statuses[livechat.bot_id] = "not_accepting_chats"
    settings = settings_for(livechat, LIVECHAT_BOT_ID=livechat.bot_id)
    out = io.StringIO()
    assert setup(settings, URL, out) == livechat.bot_id
    registered = sorted(w["action"] for w in livechat.webhooks.values())
    assert registered == sorted(ACTIONS)
    assert all(w["url"] == URL and w["type"] == "license" for w in livechat.webhooks.values())
    assert livechat.routing_statuses[livechat.bot_id] == "accepting_chats"
    assert livechat.license_webhooks[livechat.client_id] is True
    assert livechat.calls("create_bot") == []
    assert "test-secret" not in out.getvalue()

    setup(settings, URL, io.StringIO())  # idempotent: nothing registered twice
    assert len(livechat.webhooks) == len(ACTIONS)
    assert len(livechat.calls("register_webhook")) == len(ACTIONS)


def test_setup_creates_a_bot_when_there_is_none(livechat):
    livechat.bots.clear()
    out = io.StringIO()
    bot_id = setup(settings_for(livechat), URL, out)
    assert bot_id in livechat.bots
    assert f"LIVECHAT_BOT_ID={bot_id}" in out.getvalue()
    assert len(livechat.calls("create_bot")) == 1


@pytest.mark.parametrize("missing, variable", [
    ({"account_id": None, "pat": None}, "LIVECHAT_PAT"),
    ({"client_id": None}, "LIVECHAT_CLIENT_ID"),
])
def test_setup_needs_credentials_and_a_client_id(livechat, missing, variable):
    settings = settings_for(livechat)
    settings = replace(settings, livechat=replace(settings.livechat, **missing))
    with pytest.raises(ConfigError, match=variable):
        setup(settings, URL, io.StringIO(), client=LiveChatClient(settings.livechat))
