"""Configuration: read once from the environment into a typed, immutable object."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

API_VERSIONS = ("3.5", "3.6")
REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
RABBITMQ_CONSUMER_TIMEOUT = 1800  # seconds: consumer_timeout's default since RabbitMQ 3.8.17


class ConfigError(Exception):
    """Bad configuration; the message names the variable (or rule) at fault."""


@dataclass(frozen=True)
class LiveChatSettings:
    api_url: str = "https://api.livechatinc.com"
    api_version: str = "3.6"
    account_id: str | None = None
    pat: str | None = None
    access_token: str | None = None
    bot_id: str | None = None
    bot_secret: str | None = None
    client_id: str | None = None
    organization_id: str | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_token or (self.account_id and self.pat))


@dataclass(frozen=True)
class MarketplaceSettings:
    """Many licenses from one deployment (SPEC §11): the app's OAuth client and where installs come back."""

    client_id: str
    client_secret: str = field(repr=False)
    public_url: str
    secret_keys: tuple[str, ...] = field(repr=False)  # Fernet keys: the first encrypts, every one decrypts
    accounts_url: str = "https://accounts.livechat.com"
    app_webhook_token: str | None = None
    org_rate: float = 5.0  # LiveChat API calls per second per organization

    @property
    def redirect_uri(self) -> str:
        """The Direct installation URL: where the accounts server sends an installing user back."""
        return f"{self.public_url}/livechat/callback"


@dataclass(frozen=True)
class LhcSettings:
    """Live Helper Chat's REST API: base URL (``/index.php`` included where needed), Basic ``user:key``."""

    api_url: str
    api_user: str
    api_key: str


@dataclass(frozen=True)
class MailchimpSettings:
    api_key: str
    list_id: str
    api_url: str


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    broker_url: str = "redis://localhost:6379/0"
    webhook_secrets: tuple[str, ...] = ()
    chatbot_tokens: tuple[str, ...] = ()  # ChatBot.com webhook verification tokens
    lhc_secrets: tuple[str, ...] = ()  # the Bearer tokens Live Helper Chat's Rest API calls carry
    lhc: LhcSettings | None = None
    insecure_dev: bool = False
    ingress_basic_auth: tuple[str, str] | None = None
    ingress_max_bytes: int = 1024 * 1024
    livechat: LiveChatSettings = field(default_factory=LiveChatSettings)
    marketplace: MarketplaceSettings | None = None  # set: many licenses, tenants by organization
    mailchimp: MailchimpSettings | None = None
    rules_path: str | None = None
    flower_basic_auth: str | None = None
    # Workers send task events from the start (CHATHOOKS_TASK_EVENTS); off, Flower turns them on while it runs.
    task_events: bool = False
    dry_run: bool = True  # the whole system: forced, or no platform has credentials
    dry_run_flag: bool | None = None  # CHATHOOKS_DRY_RUN, when set
    key_prefix: str = "chathooks:"
    queue: str = "chathooks.events"
    # LiveChat retries for about a minute; ids that name one delivery are kept far longer.
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    state_dedupe_ttl_seconds: int = 300
    chat_ttl_seconds: int = 7 * 24 * 3600
    ended_chat_ttl_seconds: int = 24 * 3600
    profile_ttl_seconds: int = 90 * 24 * 3600
    timeline_max_events: int = 500
    task_time_limit_seconds: int = 120
    visibility_timeout_seconds: int = 600
    redis_timeout_seconds: float = 2.0
    redis_sentinel_master: str = "mymaster"  # REDIS_SENTINEL_MASTER, when REDIS_URL names sentinels
    redis_wait_ms: int = 0  # an enqueue waits this long for a replica to have it (sentinels: 100 by default)
    # RabbitMQ: connecting, and a publish's confirm, each wait this long; a delivery's dedupe claim is pending
    # until its publish is confirmed, and a claim left pending longer (its process died) is taken over.
    publish_timeout_seconds: float = 2.0
    pending_claim_seconds: int = 15
    amqp_delivery_limit: int = 5  # deliveries of one message (each killed its worker) before it is dead-lettered
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    retry_max_attempts: int = 8

    @property
    def scheduled_queue(self) -> str:
        """Timers and retries: consumed before ``queue`` so a backlog cannot make a nudge late."""
        return f"{self.queue}.scheduled"

    @property
    def broker_is_redis(self) -> bool:
        return urlsplit(self.broker_url).scheme in REDIS_SCHEMES

    @property
    def broker_shares_state_redis(self) -> bool:
        """True when the broker is the same Redis database as the pipeline state."""
        return self.broker_is_redis and _same_redis(self.broker_url, self.redis_url)

    def platform_dry_run(self, has_credentials: bool) -> bool:
        """Whether a platform's actions are only recorded: CHATHOOKS_DRY_RUN when set, else no credentials."""
        return self.dry_run_flag if self.dry_run_flag is not None else not has_credentials

    def require_secrets(self) -> None:
        """The ingress refuses to start when no source can verify its webhooks (unless in insecure dev mode)."""
        if not (self.webhook_secrets or self.ingress_basic_auth or self.chatbot_tokens or self.lhc_secrets
                or self.insecure_dev):
            raise ConfigError(
                "LIVECHAT_WEBHOOK_SECRETS is not set: the ingress needs at least one "
                "accepted secret_key, or INGRESS_BASIC_AUTH for LiveChat v2 webhooks, or CHATBOT_WEBHOOK_TOKENS, "
                "or LHC_WEBHOOK_SECRETS (set CHATHOOKS_INSECURE_DEV=1 to run without, locally only)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment; raise ConfigError naming the culprit."""
        env = os.environ if environ is None else environ
        get = lambda name: (env.get(name) or "").strip() or None  # noqa: E731

        redis_url = _redis_url(get("REDIS_URL") or cls.redis_url, "REDIS_URL")
        broker = get("CELERY_BROKER_URL") or redis_url
        broker_url = (_redis_url(broker, "CELERY_BROKER_URL") if broker.startswith("sentinel://") else
                      _url(broker, "CELERY_BROKER_URL", (*REDIS_SCHEMES, "amqp", "amqps", "pyamqp")))
        sentinels = redis_url.startswith("sentinel://")
        wait = get("CHATHOOKS_REDIS_WAIT_MS")
        version = get("LIVECHAT_API_VERSION") or "3.6"
        if version not in API_VERSIONS:
            raise ConfigError(f"LIVECHAT_API_VERSION must be one of {', '.join(API_VERSIONS)}, not {version!r}")
        livechat = LiveChatSettings(
            api_url=_url(get("LIVECHAT_API_URL") or LiveChatSettings.api_url, "LIVECHAT_API_URL",
                         ("http", "https")).rstrip("/"),
            api_version=version,
            account_id=get("LIVECHAT_ACCOUNT_ID"),
            pat=get("LIVECHAT_PAT"),
            access_token=get("LIVECHAT_ACCESS_TOKEN"),
            bot_id=get("LIVECHAT_BOT_ID"),
            bot_secret=get("LIVECHAT_BOT_SECRET"),
            client_id=get("LIVECHAT_CLIENT_ID"),
            organization_id=get("LIVECHAT_ORGANIZATION_ID"),
        )
        if bool(livechat.account_id) != bool(livechat.pat):
            raise ConfigError("LIVECHAT_ACCOUNT_ID and LIVECHAT_PAT must be set together")
        marketplace = _marketplace(get, livechat.client_id)
        if marketplace and livechat.has_credentials and not livechat.organization_id:
            # Its webhooks would otherwise be taken for an organization that never installed the app.
            raise ConfigError("LIVECHAT_ORGANIZATION_ID is required with LIVECHAT_CLIENT_SECRET when LIVECHAT_PAT or "
                              "LIVECHAT_ACCESS_TOKEN is set too: it names the license those credentials serve")

        dry_run_flag = get("CHATHOOKS_DRY_RUN")
        forced = _flag(dry_run_flag, "CHATHOOKS_DRY_RUN") if dry_run_flag else None
        lhc = _lhc(get("LHC_API_URL"), get("LHC_API_USER"), get("LHC_API_KEY"))
        dry_run = forced if forced is not None else not (livechat.has_credentials or marketplace or lhc)

        tuning = _tuning(get)
        limit = tuning.get("task_time_limit_seconds", cls.task_time_limit_seconds)
        if urlsplit(broker_url).scheme not in REDIS_SCHEMES and limit >= RABBITMQ_CONSUMER_TIMEOUT:
            # RabbitMQ closes the channel of a consumer that holds a message unacknowledged that long.
            raise ConfigError(f"CHATHOOKS_TASK_TIME_LIMIT ({limit}) must stay below RabbitMQ's consumer timeout "
                              f"({RABBITMQ_CONSUMER_TIMEOUT} s by default)")
        return cls(
            redis_url=redis_url,
            broker_url=broker_url,
            redis_sentinel_master=get("REDIS_SENTINEL_MASTER") or cls.redis_sentinel_master,
            redis_wait_ms=_non_negative_int(wait, "CHATHOOKS_REDIS_WAIT_MS") if wait else 100 if sentinels else 0,
            webhook_secrets=_list(get("LIVECHAT_WEBHOOK_SECRETS")),
            chatbot_tokens=_list(get("CHATBOT_WEBHOOK_TOKENS")),
            lhc_secrets=_list(get("LHC_WEBHOOK_SECRETS")),
            lhc=lhc,
            insecure_dev=_flag(get("CHATHOOKS_INSECURE_DEV"), "CHATHOOKS_INSECURE_DEV"),
            task_events=_flag(get("CHATHOOKS_TASK_EVENTS"), "CHATHOOKS_TASK_EVENTS"),
            ingress_basic_auth=_user_password(get("INGRESS_BASIC_AUTH"), "INGRESS_BASIC_AUTH"),
            ingress_max_bytes=_positive_int(get("INGRESS_MAX_BYTES"), "INGRESS_MAX_BYTES", cls.ingress_max_bytes),
            livechat=livechat,
            marketplace=marketplace,
            mailchimp=_mailchimp(get("MAILCHIMP_API_KEY"), get("MAILCHIMP_LIST_ID"), get("MAILCHIMP_API_URL")),
            rules_path=get("CHATHOOKS_RULES"),
            flower_basic_auth=get("FLOWER_BASIC_AUTH"),
            dry_run=dry_run,
            dry_run_flag=forced,
            key_prefix=get("CHATHOOKS_KEY_PREFIX") or cls.key_prefix,
            queue=get("CHATHOOKS_QUEUE") or cls.queue,
            **tuning,
        )


# Operational tuning: optional, each a positive number; the defaults suit production.
_INTS = {
    "CHATHOOKS_DEDUPE_TTL": "dedupe_ttl_seconds",
    "CHATHOOKS_STATE_DEDUPE_TTL": "state_dedupe_ttl_seconds",
    "CHATHOOKS_CHAT_TTL": "chat_ttl_seconds",
    "CHATHOOKS_ENDED_CHAT_TTL": "ended_chat_ttl_seconds",
    "CHATHOOKS_PROFILE_TTL": "profile_ttl_seconds",
    "CHATHOOKS_TASK_TIME_LIMIT": "task_time_limit_seconds",
    "CHATHOOKS_VISIBILITY_TIMEOUT": "visibility_timeout_seconds",
    "CHATHOOKS_RETRY_ATTEMPTS": "retry_max_attempts",
    "CHATHOOKS_PENDING_CLAIM_TTL": "pending_claim_seconds",
    "CHATHOOKS_AMQP_DELIVERY_LIMIT": "amqp_delivery_limit",
}
_FLOATS = {
    "CHATHOOKS_RETRY_BASE": "retry_base_seconds",
    "CHATHOOKS_RETRY_CAP": "retry_cap_seconds",
    "CHATHOOKS_PUBLISH_TIMEOUT": "publish_timeout_seconds",
}


def _tuning(get: Callable[[str], str | None]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, attr in _INTS.items():
        if (value := get(name)) is not None:
            values[attr] = _positive_int(value, name, 0)
    for name, attr in _FLOATS.items():
        if (value := get(name)) is not None:
            values[attr] = _positive_float(value, name)
    limit = values.get("task_time_limit_seconds", Settings.task_time_limit_seconds)
    visibility = values.get("visibility_timeout_seconds", Settings.visibility_timeout_seconds)
    if visibility <= limit:
        # Otherwise Redis would hand a running task to a second worker.
        raise ConfigError(f"CHATHOOKS_VISIBILITY_TIMEOUT ({visibility}) must exceed "
                          f"CHATHOOKS_TASK_TIME_LIMIT ({limit})")
    publish = values.get("publish_timeout_seconds", Settings.publish_timeout_seconds)
    pending = values.get("pending_claim_seconds", Settings.pending_claim_seconds)
    if pending <= 4 * publish:
        # A publish on a new connection waits at most four times the timeout (connect, the channel and its
        # declarations, the write, the confirm); a claim lapsing before that would let a retry queue twice.
        raise ConfigError(f"CHATHOOKS_PENDING_CLAIM_TTL ({pending}) must exceed four times CHATHOOKS_PUBLISH_TIMEOUT "
                          f"({publish:g})")
    return values


def _list(value: str | None) -> tuple[str, ...]:
    """A comma-separated list (of secrets: several allow rotation), blanks dropped."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _positive_float(value: str, name: str, unit: str = "seconds") -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < float("inf"):
        raise ConfigError(f"{name} must be a positive number of {unit}, not {value!r}")
    return number


def _url(value: str, name: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.hostname):
        raise ConfigError(f"{name} is not a valid URL (expected {'/'.join(schemes)}://…): {_redact(value)!r}")
    return value


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("0", "false", "no", "off"):
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, not {value!r}")


def _positive_int(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _user_password(value: str | None, name: str) -> tuple[str, str] | None:
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{name} must look like user:password")
    return user, password


def _lhc(api_url: str | None, user: str | None, key: str | None) -> LhcSettings | None:
    if not (api_url or user or key):
        return None
    if not (api_url and user and key):
        raise ConfigError("LHC_API_URL, LHC_API_USER and LHC_API_KEY must be set together")
    return LhcSettings(_url(api_url, "LHC_API_URL", ("http", "https")).rstrip("/"), user, key)


def _marketplace(get: Callable[[str], str | None], client_id: str | None) -> MarketplaceSettings | None:
    """Multi-license mode, on when LIVECHAT_CLIENT_SECRET is set; a malformed CHATHOOKS_SECRET_KEY stops the
    process whether or not it is on."""
    keys = _fernet_keys(get("CHATHOOKS_SECRET_KEY"))
    secret = get("LIVECHAT_CLIENT_SECRET")
    if secret is None:
        return None
    for name, value in (("LIVECHAT_CLIENT_ID", client_id), ("CHATHOOKS_PUBLIC_URL", get("CHATHOOKS_PUBLIC_URL"))):
        if value is None:
            raise ConfigError(f"{name} is required with LIVECHAT_CLIENT_SECRET (many licenses from one deployment)")
    if not keys:
        raise ConfigError("CHATHOOKS_SECRET_KEY is required with LIVECHAT_CLIENT_SECRET: tenants' tokens are "
                          "encrypted with it (generate one: python -c 'from cryptography.fernet import Fernet; "
                          "print(Fernet.generate_key().decode())')")
    public_url = _url(get("CHATHOOKS_PUBLIC_URL") or "", "CHATHOOKS_PUBLIC_URL", ("http", "https")).rstrip("/")
    accounts = get("LIVECHAT_ACCOUNTS_URL") or MarketplaceSettings.accounts_url
    rate = get("CHATHOOKS_ORG_RATE")
    org_rate = _positive_float(rate, "CHATHOOKS_ORG_RATE", "requests per second") if rate else None
    return MarketplaceSettings(
        client_id=client_id or "", client_secret=secret, public_url=public_url, secret_keys=keys,
        accounts_url=_url(accounts, "LIVECHAT_ACCOUNTS_URL", ("http", "https")).rstrip("/"),
        app_webhook_token=get("LIVECHAT_APP_WEBHOOK_TOKEN"),
        org_rate=org_rate or MarketplaceSettings.org_rate,
    )


def _fernet_keys(value: str | None) -> tuple[str, ...]:
    from cryptography.fernet import Fernet

    keys = _list(value)
    for n, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # The message never repeats the key.
            raise ConfigError(f"CHATHOOKS_SECRET_KEY: key {n} of {len(keys)} is not a Fernet key "
                              "(32 bytes, url-safe base64)") from None
    return keys


def _mailchimp(api_key: str | None, list_id: str | None, api_url: str | None) -> MailchimpSettings | None:
    if not api_key and not list_id:
        return None
    if not (api_key and list_id):
        raise ConfigError("MAILCHIMP_API_KEY and MAILCHIMP_LIST_ID must be set together")
    if api_url is None:
        _, sep, dc = api_key.rpartition("-")
        if not sep or not re.fullmatch(r"[a-z]+[0-9]+", dc):
            raise ConfigError("MAILCHIMP_API_KEY has no data-centre suffix (like -us21); set MAILCHIMP_API_URL")
        api_url = f"https://{dc}.api.mailchimp.com/3.0"
    return MailchimpSettings(api_key=api_key, list_id=list_id,
                             api_url=_url(api_url, "MAILCHIMP_API_URL", ("http", "https")).rstrip("/"))


def _redis_url(value: str, name: str) -> str:
    """A Redis URL, or sentinels: ``sentinel://host:port`` parts joined by ``;`` (the last may name the db)."""
    if not value.startswith("sentinel://"):
        return _url(value, name, ("redis", "rediss", "unix"))
    for part in value.split(";"):
        parts = urlsplit(part)
        try:
            valid = parts.scheme == "sentinel" and bool(parts.hostname) and parts.port is not None
        except ValueError:  # a port that is no number
            valid = False
        if not valid:
            raise ConfigError(f"{name} is not a valid list of sentinels "
                              f"(sentinel://host:port;sentinel://host:port/db): {_redact(value)!r}")
    return value


def _non_negative_int(value: str, name: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number of milliseconds (0: off), not {value!r}")
    return int(value)


def _same_redis(a: str, b: str) -> bool:
    if a.startswith("sentinel://") or b.startswith("sentinel://"):
        return a == b
    pa, pb = urlsplit(a), urlsplit(b)
    db = lambda p: (p.path.strip("/") or "0")  # noqa: E731
    return (pa.hostname, pa.port or 6379, db(pa)) == (pb.hostname, pb.port or 6379, db(pb))
