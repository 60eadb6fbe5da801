"""Multi-license mode's configuration (SPEC §11): LIVECHAT_CLIENT_SECRET turns it on; what it then requires."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from chathooks.settings import ConfigError, MarketplaceSettings, Settings

KEY = Fernet.generate_key().decode()
ON = {"LIVECHAT_CLIENT_ID": "client-1", "LIVECHAT_CLIENT_SECRET": "client-secret-1",
      "CHATHOOKS_PUBLIC_URL": "https://hooks.example.com", "CHATHOOKS_SECRET_KEY": KEY}


def market(**env: str) -> MarketplaceSettings:
    settings = Settings.from_env({**ON, **env})
    assert settings.marketplace is not None
    return settings.marketplace


# --- off / on -----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [
    {},
    {"LIVECHAT_CLIENT_ID": "client-1", "CHATHOOKS_PUBLIC_URL": "https://hooks.example.com",
     "CHATHOOKS_SECRET_KEY": KEY, "LIVECHAT_APP_WEBHOOK_TOKEN": "t", "LIVECHAT_ACCOUNTS_URL": "http://localhost"},
    {"LIVECHAT_CLIENT_SECRET": "  "},  # blank is unset
    {"LIVECHAT_ACCOUNT_ID": "acc", "LIVECHAT_PAT": "pat"},
])
def test_multi_license_is_off_without_a_client_secret(env):
    assert Settings.from_env(env).marketplace is None


def test_the_client_secret_turns_multi_license_on_with_the_app_credentials():
    m = market(LIVECHAT_APP_WEBHOOK_TOKEN="app-token")
    assert (m.client_id, m.client_secret, m.public_url) == ("client-1", "client-secret-1", "https://hooks.example.com")
    assert m.secret_keys == (KEY,)
    assert m.app_webhook_token == "app-token"


def test_values_are_stripped_and_the_public_url_loses_its_trailing_slash():
    m = market(LIVECHAT_CLIENT_ID=" client-1 ", LIVECHAT_CLIENT_SECRET=" client-secret-1\n",
               CHATHOOKS_PUBLIC_URL="https://hooks.example.com/", CHATHOOKS_SECRET_KEY=f" {KEY} ")
    assert (m.client_id, m.client_secret, m.public_url, m.secret_keys) == (
        "client-1", "client-secret-1", "https://hooks.example.com", (KEY,))


def test_the_app_webhook_token_is_optional():
    assert market().app_webhook_token is None


@pytest.mark.parametrize("missing", ["LIVECHAT_CLIENT_ID", "CHATHOOKS_PUBLIC_URL", "CHATHOOKS_SECRET_KEY"])
@pytest.mark.parametrize("how", ["unset", "blank"])
def test_multi_license_requires_each_of_its_variables_and_names_the_missing_one(missing, how):
    env = {k: v for k, v in ON.items() if k != missing} if how == "unset" else {**ON, missing: " "}
    with pytest.raises(ConfigError, match=missing) as err:
        Settings.from_env(env)
    assert "client-secret-1" not in str(err.value)


@pytest.mark.parametrize("url", ["hooks.example.com", "ftp://hooks.example.com", "https://"])
def test_a_malformed_public_url_names_the_variable(url):
    with pytest.raises(ConfigError, match="CHATHOOKS_PUBLIC_URL"):
        Settings.from_env({**ON, "CHATHOOKS_PUBLIC_URL": url})


# --- CHATHOOKS_SECRET_KEY ------------------------------------------------------------------------


BAD_KEYS = [
    "hunter2-not-a-fernet-key",
    KEY[:-4],  # truncated
    KEY[:-2] + "!!",  # not base64
    "A" * 40 + "==",  # base64, but 30 bytes
    "é" * 44,  # not ASCII
]


@pytest.mark.parametrize("bad", BAD_KEYS)
@pytest.mark.parametrize("multi_license", [True, False])
def test_a_malformed_secret_key_names_the_variable_and_never_repeats_the_key(bad, multi_license):
    env = {**ON, "CHATHOOKS_SECRET_KEY": bad} if multi_license else {"CHATHOOKS_SECRET_KEY": bad}
    with pytest.raises(ConfigError, match="CHATHOOKS_SECRET_KEY") as err:
        Settings.from_env(env)
    assert bad not in str(err.value)
    assert bad[:12] not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained error repeating it


def test_a_malformed_key_among_good_ones_is_refused_without_showing_any_key():
    bad = "hunter2-not-a-fernet-key"
    with pytest.raises(ConfigError, match="CHATHOOKS_SECRET_KEY") as err:
        Settings.from_env({**ON, "CHATHOOKS_SECRET_KEY": f"{KEY},{bad}"})
    assert bad not in str(err.value) and KEY not in str(err.value)
    assert "2" in str(err.value)  # which one, by position


def test_several_secret_keys_are_accepted_first_one_first():
    second, third = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert market(CHATHOOKS_SECRET_KEY=f"{KEY}, {second},,{third}").secret_keys == (KEY, second, third)


def test_a_secret_key_without_the_client_secret_is_checked_but_does_not_turn_multi_license_on():
    assert Settings.from_env({"CHATHOOKS_SECRET_KEY": KEY}).marketplace is None


# --- CHATHOOKS_ORG_RATE, LIVECHAT_ACCOUNTS_URL --------------------------------------------------


def test_the_organization_rate_defaults_to_5_per_second():
    assert market().org_rate == 5.0
    assert MarketplaceSettings("c", "s", "https://h", (KEY,)).org_rate == 5.0


@pytest.mark.parametrize("value, rate", [("12.5", 12.5), ("1", 1.0), (" 0.5 ", 0.5), ("100", 100.0)])
def test_the_organization_rate_is_parsed(value, rate):
    assert market(CHATHOOKS_ORG_RATE=value).org_rate == rate


@pytest.mark.parametrize("value", ["0", "-1", "fast", "inf", "nan", "1e400", "5/s"])
def test_a_bad_organization_rate_names_the_variable(value):
    with pytest.raises(ConfigError, match="CHATHOOKS_ORG_RATE"):
        Settings.from_env({**ON, "CHATHOOKS_ORG_RATE": value})


def test_the_accounts_url_defaults_to_livechats():
    assert market().accounts_url == "https://accounts.livechat.com"


def test_the_accounts_url_may_point_elsewhere():
    assert market(LIVECHAT_ACCOUNTS_URL="http://127.0.0.1:8123/").accounts_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize("url", ["accounts.livechat.com", "redis://accounts", "http://"])
def test_a_malformed_accounts_url_names_the_variable(url):
    with pytest.raises(ConfigError, match="LIVECHAT_ACCOUNTS_URL"):
        Settings.from_env({**ON, "LIVECHAT_ACCOUNTS_URL": url})


# --- dry run, PAT, redirect_uri -----------------------------------------------------------------


def test_multi_license_credentials_turn_dry_run_off_without_a_pat():
    settings = Settings.from_env(ON)
    assert not settings.livechat.has_credentials
    assert settings.dry_run is False


def test_dry_run_can_still_be_forced_in_multi_license_mode():
    assert Settings.from_env({**ON, "CHATHOOKS_DRY_RUN": "1"}).dry_run is True


def test_with_a_pat_too_multi_license_wins_and_the_pat_is_kept():
    settings = Settings.from_env({**ON, "LIVECHAT_ACCOUNT_ID": "acc", "LIVECHAT_PAT": "pat",
                                  "LIVECHAT_ORGANIZATION_ID": "org-static"})
    assert settings.marketplace is not None
    assert (settings.livechat.account_id, settings.livechat.pat) == ("acc", "pat")
    assert settings.dry_run is False


def test_a_pat_beside_multi_license_mode_must_name_its_organization():
    with pytest.raises(ConfigError, match="LIVECHAT_ORGANIZATION_ID"):
        Settings.from_env({**ON, "LIVECHAT_ACCOUNT_ID": "acc", "LIVECHAT_PAT": "pat"})


@pytest.mark.parametrize("public_url, redirect_uri", [
    ("https://hooks.example.com", "https://hooks.example.com/livechat/callback"),
    ("https://hooks.example.com/", "https://hooks.example.com/livechat/callback"),
    ("https://example.com/chathooks/", "https://example.com/chathooks/livechat/callback"),
    ("http://localhost:8000", "http://localhost:8000/livechat/callback"),
])
def test_the_redirect_uri_is_the_public_url_plus_the_callback_path(public_url, redirect_uri):
    assert market(CHATHOOKS_PUBLIC_URL=public_url).redirect_uri == redirect_uri

