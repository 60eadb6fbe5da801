from __future__ import annotations

import pytest

from chathooks.settings import ConfigError, Settings


def test_defaults():
    s = Settings.from_env({})
    assert s.redis_url == s.broker_url == "redis://localhost:6379/0"
    assert s.livechat.api_url == "https://api.livechatinc.com"
    assert s.livechat.api_version == "3.6"
    assert s.dry_run is True
    assert s.mailchimp is None
    assert s.broker_shares_state_redis


def test_secrets_are_split_and_required():
    assert Settings.from_env({"LIVECHAT_WEBHOOK_SECRETS": " a, b ,,"}).webhook_secrets == ("a", "b")
    with pytest.raises(ConfigError, match="LIVECHAT_WEBHOOK_SECRETS"):
        Settings.from_env({}).require_secrets()
    Settings.from_env({"CHATHOOKS_INSECURE_DEV": "1"}).require_secrets()


@pytest.mark.parametrize("env, variable", [
    ({"LIVECHAT_API_VERSION": "3.4"}, "LIVECHAT_API_VERSION"),
    ({"LIVECHAT_API_URL": "api.livechatinc.com"}, "LIVECHAT_API_URL"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    ({"CELERY_BROKER_URL": "nope"}, "CELERY_BROKER_URL"),
    ({"INGRESS_BASIC_AUTH": "nopassword"}, "INGRESS_BASIC_AUTH"),
    ({"INGRESS_MAX_BYTES": "-1"}, "INGRESS_MAX_BYTES"),
    ({"CHATHOOKS_DRY_RUN": "maybe"}, "CHATHOOKS_DRY_RUN"),
    ({"LIVECHAT_ACCOUNT_ID": "a"}, "LIVECHAT_PAT"),
    ({"MAILCHIMP_API_KEY": "k-us21"}, "MAILCHIMP_LIST_ID"),
    ({"MAILCHIMP_API_KEY": "nodc", "MAILCHIMP_LIST_ID": "l"}, "MAILCHIMP_API_KEY"),
])
def test_bad_configuration_names_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_url_errors_do_not_echo_passwords():
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"CELERY_BROKER_URL": "ftp://user:hunter2@host/"})
    assert "hunter2" not in str(err.value)


def test_credentials_turn_dry_run_off_unless_forced():
    pat = {"LIVECHAT_ACCOUNT_ID": "acc", "LIVECHAT_PAT": "pat"}
    assert Settings.from_env(pat).dry_run is False
    assert Settings.from_env({**pat, "CHATHOOKS_DRY_RUN": "1"}).dry_run is True
    assert Settings.from_env({"LIVECHAT_ACCESS_TOKEN": "dal:x"}).dry_run is False


def test_mailchimp_data_centre_comes_from_the_key():
    s = Settings.from_env({"MAILCHIMP_API_KEY": "abc-us21", "MAILCHIMP_LIST_ID": "L1"})
    assert s.mailchimp.api_url == "https://us21.api.mailchimp.com/3.0"


@pytest.mark.parametrize("broker, shares", [
    ("redis://localhost:6379/0", True),
    ("redis://localhost:6379", True),
    ("redis://localhost:6379/1", False),
    ("amqp://guest:guest@localhost:5672//", False),
])
def test_broker_sharing_state_redis(broker, shares):
    s = Settings.from_env({"REDIS_URL": "redis://localhost:6379/0", "CELERY_BROKER_URL": broker})
    assert s.broker_shares_state_redis is shares


def test_operational_tuning_from_the_environment():
    s = Settings.from_env({"CHATHOOKS_ENDED_CHAT_TTL": "5", "CHATHOOKS_RETRY_BASE": "0.2",
                           "CHATHOOKS_RETRY_ATTEMPTS": "3", "CHATHOOKS_TASK_TIME_LIMIT": "10",
                           "CHATHOOKS_VISIBILITY_TIMEOUT": "15", "CHATHOOKS_INSECURE_DEV": "1"})
    assert (s.ended_chat_ttl_seconds, s.retry_base_seconds, s.retry_max_attempts) == (5, 0.2, 3)
    assert (s.task_time_limit_seconds, s.visibility_timeout_seconds) == (10, 15)


def test_rabbitmq_tuning_from_the_environment():
    s = Settings.from_env({"CHATHOOKS_PUBLISH_TIMEOUT": "0.5", "CHATHOOKS_PENDING_CLAIM_TTL": "3",
                           "CHATHOOKS_AMQP_DELIVERY_LIMIT": "4"})
    assert (s.publish_timeout_seconds, s.pending_claim_seconds, s.amqp_delivery_limit) == (0.5, 3, 4)


@pytest.mark.parametrize("env, variable", [
    ({"CHATHOOKS_CHAT_TTL": "0"}, "CHATHOOKS_CHAT_TTL"),
    ({"CHATHOOKS_RETRY_BASE": "nan"}, "CHATHOOKS_RETRY_BASE"),
    ({"CHATHOOKS_RETRY_CAP": "-1"}, "CHATHOOKS_RETRY_CAP"),
    ({"CHATHOOKS_VISIBILITY_TIMEOUT": "100"}, "CHATHOOKS_VISIBILITY_TIMEOUT"),
    # A claim that could lapse while its publish still waits would let a retry queue the delivery twice.
    ({"CHATHOOKS_PUBLISH_TIMEOUT": "4"}, "CHATHOOKS_PENDING_CLAIM_TTL"),
    ({"CHATHOOKS_AMQP_DELIVERY_LIMIT": "0"}, "CHATHOOKS_AMQP_DELIVERY_LIMIT"),
    ({"CELERY_BROKER_URL": "amqp://guest:guest@localhost:5672//", "CHATHOOKS_TASK_TIME_LIMIT": "1800",
      "CHATHOOKS_VISIBILITY_TIMEOUT": "3600"}, "consumer timeout"),
])
def test_bad_tuning_names_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)
