"""``chathooks tenants`` over a fakeredis store: list, show, remove, rotate; never a token."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.fernet import Fernet

from chathooks.platforms.livechat.accounts import AccountsClient
from chathooks.platforms.livechat.tenants import Status, TenantStore
from chathooks.settings import MarketplaceSettings
from cli import tenants
from cli.main import main
from tests.conftest import make_settings
from tests.fakes.accounts import FakeAccounts

KEY = Fernet.generate_key().decode()
GRANT = {"organization_id": "org-1", "access_token": "dal:access-Zq9secret", "refresh_token": "refresh-Yk4secret",
         "expires_in": 28800, "scope": "chats--all:rw", "account_id": "acc-1"}


@pytest.fixture
def store(settings, fake_redis) -> TenantStore:
    store = TenantStore(fake_redis, settings.key_prefix, [KEY])
    store.authorised(GRANT)
    store.update("org-1", status=Status.ACTIVE, license_id="104130623", bot_id="bot-1", bot_secret="botsec-Xw2")
    return store


def secrets_in(text: str) -> list[str]:
    return [s for s in ("dal:access-Zq9secret", "refresh-Yk4secret", "botsec-Xw2", KEY) if s in text]


def test_list_is_a_table_without_any_secret(store):
    out = io.StringIO()
    assert tenants.list_tenants(store, False, out) == 0
    header, row = out.getvalue().splitlines()
    assert header.split()[:3] == ["ORGANIZATION", "STATUS", "LICENSE"]
    assert row.split()[:5] == ["org-1", "active", "104130623", "dal", "bot-1"]
    assert secrets_in(out.getvalue()) == []


def test_list_and_show_as_json_tell_which_secrets_exist_but_not_them(store):
    out, err = io.StringIO(), io.StringIO()
    assert tenants.show(store, "org-1", True, out, err) == 0
    shown = json.loads(out.getvalue())
    assert shown["status"] == "active" and shown["has_tokens"] and shown["has_bot_secret"]
    assert secrets_in(out.getvalue()) == []
    out = io.StringIO()
    tenants.list_tenants(store, True, out)
    assert [t["organization_id"] for t in json.loads(out.getvalue())] == ["org-1"]


def test_show_and_remove_of_an_unknown_tenant_exit_1(store):
    for command in (lambda o, e: tenants.show(store, "nope", False, o, e),
                    lambda o, e: tenants.remove(store, None, "nope", o, e)):  # type: ignore[arg-type]
        err = io.StringIO()
        assert command(io.StringIO(), err) == 1 and "no tenant 'nope'" in err.getvalue()


def test_remove_revokes_the_tokens_then_deletes_the_record(store):
    with FakeAccounts("client-1", "client-secret-1").start() as accounts:
        market = MarketplaceSettings("client-1", "client-secret-1", "https://hooks.example.com", (KEY,),
                                     accounts_url=accounts.url)
        out, err = io.StringIO(), io.StringIO()
        assert tenants.remove(store, AccountsClient(market), "org-1", out, err) == 0
        assert len(accounts.recorded("revoke")) == 2  # unknown to this fake: 404 for each, not fatal
    assert store.get("org-1") is None and store.all() == []
    assert "removed org-1 (its tokens could not be revoked" in out.getvalue()
    assert secrets_in(out.getvalue() + err.getvalue()) == []


def test_remove_revokes_the_grant_with_its_access_token(settings, fake_redis):
    with FakeAccounts("client-1", "client-secret-1").start() as accounts:
        market = MarketplaceSettings("client-1", "client-secret-1", "https://hooks.example.com", (KEY,),
                                     accounts_url=accounts.url)
        client = AccountsClient(market)
        store = TenantStore(fake_redis, settings.key_prefix, [KEY])
        store.authorised(client.exchange(accounts.authorize("org-2")))
        out = io.StringIO()
        assert tenants.remove(store, client, "org-2", out, io.StringIO()) == 0
        assert len(accounts.recorded("revoke")) == 1 and accounts.live_access_tokens("org-2") == []
    assert "its tokens revoked" in out.getvalue()


def test_rotate_reencrypts_with_the_first_key(store, settings, fake_redis):
    new = Fernet.generate_key().decode()
    both = TenantStore(fake_redis, settings.key_prefix, [new, KEY])
    out = io.StringIO()
    assert tenants.rotate(both, out) == 0 and out.getvalue().startswith("1 tenant(s)")
    alone = TenantStore(fake_redis, settings.key_prefix, [new])
    assert alone.get("org-1").access_token == GRANT["access_token"]


def test_the_command_refuses_single_license_mode(monkeypatch, capsys):
    monkeypatch.delenv("LIVECHAT_CLIENT_SECRET", raising=False)
    assert main(["tenants", "list"]) == 2
    assert "multi-license mode is off" in capsys.readouterr().err


def test_rotate_without_the_old_key_destroys_nothing_and_exits_1(store, settings, fake_redis):
    out = io.StringIO()
    assert tenants.rotate(TenantStore(fake_redis, settings.key_prefix, [Fernet.generate_key().decode()]), out) == 1
    assert "no configured key reads" in out.getvalue()
    assert store.get("org-1").access_token == GRANT["access_token"]


def test_the_environments_organization_is_listed_and_shown_as_one_more_tenant_never_removed(store):
    static = tenants.static_tenant(make_settings(
        LIVECHAT_ACCOUNT_ID="acc-9", LIVECHAT_PAT="dal:pat-Hq7secret", LIVECHAT_ORGANIZATION_ID="org-env",
        LIVECHAT_BOT_ID="bot-env"))
    out = io.StringIO()
    assert tenants.list_tenants(store, False, out, static) == 0
    rows = [line.split() for line in out.getvalue().splitlines()[1:]]
    assert [r[:2] for r in rows] == [["org-env", "static"], ["org-1", "active"]] and rows[0][4] == "bot-env"
    out, err = io.StringIO(), io.StringIO()
    assert tenants.show(store, "org-env", True, out, err, static) == 0
    assert json.loads(out.getvalue())["configured_by"].startswith("environment")
    assert "pat-Hq7secret" not in out.getvalue()
    err = io.StringIO()
    assert tenants.remove(store, None, "org-env", io.StringIO(), err, static) == 1  # type: ignore[arg-type]
    assert "configured by the environment" in err.getvalue()
    assert tenants.static_tenant(make_settings()) is None
