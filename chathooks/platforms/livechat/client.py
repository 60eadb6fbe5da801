"""LiveChat Agent Chat and Configuration Web API client (v3.5 and v3.6)."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import redis
import requests

from chathooks.http import DEFAULT_TIMEOUT, ErrorInfo, JsonHttp, OutboundError, Timeout, json_body, status_type
from chathooks.platforms.livechat.fairness import OrganizationRate
from chathooks.settings import LiveChatSettings

TRANSIENT_TYPES = frozenset({"too_many_requests", "internal", "service_unavailable", "request_timeout"})
BOT_TOKEN_LIFETIME = 24 * 3600.0
BOT_TOKEN_RENEW_BEFORE = 3600.0

log = logging.getLogger(__name__)


class TokenCache(Protocol):
    """Where bot tokens are kept between calls (and, when shared, between processes)."""

    def get(self, key: str) -> tuple[str, float] | None: ...

    def set(self, key: str, token: str, expires_at: float) -> None: ...


class MemoryTokenCache:
    """A TokenCache for one process."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, float] | None:
        with self._lock:
            return self._items.get(key)

    def set(self, key: str, token: str, expires_at: float) -> None:
        with self._lock:
            self._items[key] = (token, expires_at)


class RedisTokenCache:
    """A TokenCache in Redis, so every worker process shares one bot token; entries expire with the token.

    Redis errors are logged and treated as a miss: the cache only saves ``issue_bot_token`` calls.
    """

    def __init__(
        self, redis_client: redis.Redis, key_prefix: str = "chathooks:", *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis_client
        self._prefix = key_prefix
        self._clock = clock

    def key(self, key: str) -> str:
        """The Redis key for a cache key (a bot id)."""
        return f"{self._prefix}livechat:bot_token:{key}"

    def get(self, key: str) -> tuple[str, float] | None:
        try:
            raw = self._redis.get(self.key(key))
            data = json.loads(raw) if raw is not None else None
            return (str(data["token"]), float(data["expires_at"])) if data is not None else None
        except redis.RedisError as exc:
            log.warning("bot token cache unavailable: %s", exc)
        except (ValueError, KeyError, TypeError):
            pass
        return None

    def set(self, key: str, token: str, expires_at: float) -> None:
        ttl_ms = int((expires_at - self._clock()) * 1000)
        try:
            if ttl_ms <= 0:
                self._redis.delete(self.key(key))
            else:
                self._redis.set(self.key(key), json.dumps({"token": token, "expires_at": expires_at}), px=ttl_ms)
        except redis.RedisError as exc:
            log.warning("bot token cache unavailable: %s", exc)


class LiveChatClient:
    """Calls the LiveChat Web APIs as the configured agent (PAT or access token) or as the bot.

    Every failure raises OutboundError; ``transient`` says whether a retry can help.
    """

    def __init__(
        self,
        settings: LiveChatSettings,
        session: requests.Session | None = None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        token_cache: TokenCache | None = None,
        clock: Callable[[], float] = time.time,
        rate: OrganizationRate | None = None,
    ) -> None:
        self.settings = settings
        self._rate = rate  # multi-license mode: the organization's share of the calls
        self._base = f"{settings.api_url.rstrip('/')}/v{settings.api_version}"
        self._agent, credential = _agent_authorization(settings)
        self._tokens = token_cache if token_cache is not None else MemoryTokenCache()
        self._clock = clock
        secrets = (settings.pat, settings.access_token, settings.bot_secret, credential)
        self._http = JsonHttp("livechat", session, timeout, _parse_error, secrets=secrets)

    # Agent Chat API

    def tag_thread(self, chat_id: str, thread_id: str, tag: str) -> None:
        """Add ``tag`` to a thread (the tag should exist in the license's tag list)."""
        self._call("agent", "tag_thread", {"chat_id": chat_id, "thread_id": thread_id, "tag": tag})

    def send_event(self, chat_id: str, event: dict[str, Any], *, as_bot: bool = True) -> str:
        """Post an event (e.g. ``{"type": "message", "text": ...}``) into a chat; return its event id."""
        body = self._call("agent", "send_event", {"chat_id": chat_id, "event": event}, as_bot=as_bot)
        return str(_field(body, "event_id", "send_event"))

    def get_chat(self, chat_id: str, thread_id: str | None = None) -> dict[str, Any]:
        """The chat with one thread: the given one, else the latest."""
        params = {"chat_id": chat_id} | ({"thread_id": thread_id} if thread_id else {})
        return self._call("agent", "get_chat", params) or {}

    def list_routing_statuses(self, group_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """``[{agent_id, status}]`` for every agent and bot, optionally within some groups."""
        params = {"filters": {"group_ids": list(group_ids)}} if group_ids is not None else {}
        return self._call("agent", "list_routing_statuses", params) or []

    def set_routing_status(self, status: str, agent_id: str | None = None, *, as_bot: bool = False) -> None:
        """Set ``accepting_chats``, ``not_accepting_chats`` or (bots) ``offline``; default target is the caller."""
        params = {"status": status} | ({"agent_id": agent_id} if agent_id else {})
        self._call("agent", "set_routing_status", params, as_bot=as_bot)

    # Configuration API

    def register_webhook(
        self,
        action: str,
        url: str,
        secret_key: str,
        owner_client_id: str,
        type: str = "license",
        filters: dict[str, Any] | None = None,
        additional_data: list[str] | None = None,
        description: str | None = None,
    ) -> str:
        """Register a webhook for one action; return its id."""
        params: dict[str, Any] = {
            "action": action,
            "url": url,
            "secret_key": secret_key,
            "owner_client_id": owner_client_id,
            "type": type,
        }
        optional = {"filters": filters, "additional_data": additional_data, "description": description}
        params.update({k: v for k, v in optional.items() if v is not None})
        body = self._call("configuration", "register_webhook", params, secrets=(secret_key,))
        return str(_field(body, "id", "register_webhook"))

    def list_webhooks(self, owner_client_id: str) -> list[dict[str, Any]]:
        """Webhooks registered by the given client."""
        return self._call("configuration", "list_webhooks", {"owner_client_id": owner_client_id}) or []

    def enable_license_webhooks(self, owner_client_id: str | None = None) -> None:
        """Turn the client's license webhooks back on (they start enabled on install). A PAT must name the
        client; a Bearer token is the client's own."""
        self._call("configuration", "enable_license_webhooks", _owner(owner_client_id))

    def license_webhooks_enabled(self, owner_client_id: str | None = None) -> bool:
        """``get_license_webhooks_state``: whether the license sends the client's webhooks."""
        body = self._call("configuration", "get_license_webhooks_state", _owner(owner_client_id))
        return bool(_field(body, "license_webhooks_enabled", "get_license_webhooks_state"))

    def create_bot(self, name: str, owner_client_id: str | None = None, **opts: Any) -> dict[str, Any]:
        """Create a bot; return ``{"id", "secret"}``. ``opts``: the API's optional fields (``max_chats_count``...)."""
        body = self._call("configuration", "create_bot", {"name": name, **_owner(owner_client_id), **opts})
        _field(body, "id", "create_bot")
        return body

    def reset_bot_secret(self, bot_id: str) -> str:
        """A new secret for one of the caller's bots (its secret is only ever shown at creation otherwise)."""
        body = self._call("configuration", "reset_bot_secret", {"id": bot_id})
        return str(_field(body, "secret", "reset_bot_secret"))

    def delete_bot(self, bot_id: str) -> None:
        self._call("configuration", "delete_bot", {"id": bot_id})

    def list_bots(self) -> list[dict[str, Any]]:
        """The caller's bots: ``[{id, name, avatar | avatar_path}]``."""
        return self._call("configuration", "list_bots", {}) or []

    def issue_bot_token(self, bot_id: str, bot_secret: str, client_id: str, organization_id: str) -> str:
        """A new 24 h bot token (v3.6 bot authorship). Sends the agent credentials when configured."""
        params = {
            "bot_id": bot_id,
            "bot_secret": bot_secret,
            "client_id": client_id,
            "organization_id": organization_id,
        }
        headers = self._agent_headers("issue_bot_token") if self.has_agent else {}
        body = self._post("configuration", "issue_bot_token", params, headers, (bot_secret,))
        token = _field(body, "token", "issue_bot_token")
        return str(token)

    # Plumbing

    @property
    def has_agent(self) -> bool:
        """Whether agent credentials are there to send."""
        return self._agent is not None

    def _call(
        self, api: str, method: str, params: dict[str, Any], *, as_bot: bool = False, secrets: Iterable[str] = ()
    ) -> Any:
        if not as_bot or self.settings.api_version == "3.5":
            headers = self._agent_headers(method)
            if as_bot:
                headers["X-Author-Id"] = self._bot_id(method)
            return self._post(api, method, params, headers, secrets)
        token, fresh = self._bot_token(method)
        try:
            return self._post(api, method, params, {"Authorization": f"Bearer {token}"}, (token, *secrets))
        except OutboundError as exc:
            # A cached token can die before its expiry (e.g. the bot secret was reset). The API
            # did nothing with a call it refused at authentication, so one replay is safe.
            if fresh or exc.type != "authentication":
                raise
        token = self._renew_bot_token(method)
        return self._post(api, method, params, {"Authorization": f"Bearer {token}"}, (token, *secrets))

    def _post(
        self, api: str, method: str, params: dict[str, Any], headers: dict[str, str], secrets: Iterable[str] = ()
    ) -> Any:
        url = f"{self._base}/{api}/action/{method}"
        if self._rate is not None:
            self._rate.take(method)
        try:
            return self._http.call("POST", url, label=method, json=params, headers=headers, secrets=secrets)
        except OutboundError as exc:
            if self._rate is not None:
                self._rate.refused(exc)
            raise

    def _agent_headers(self, method: str) -> dict[str, str]:
        if self._agent is None:
            raise _config_error(method, "set LIVECHAT_ACCOUNT_ID and LIVECHAT_PAT, or LIVECHAT_ACCESS_TOKEN")
        return dict(self._agent)

    def _bot_id(self, method: str) -> str:
        if not self.settings.bot_id:
            raise _config_error(method, "acting as the bot needs LIVECHAT_BOT_ID")
        return self.settings.bot_id

    def _bot_token(self, method: str) -> tuple[str, bool]:
        """The bot token and whether it was issued just now."""
        cached = self._tokens.get(self._bot_id(method))
        if cached is not None and cached[1] - self._clock() > BOT_TOKEN_RENEW_BEFORE:
            return cached[0], False
        return self._renew_bot_token(method), True

    def _renew_bot_token(self, method: str) -> str:
        # Workers racing here each get a valid token; the last one cached wins, which is harmless.
        s = self.settings
        bot_id = self._bot_id(method)
        if not (s.bot_secret and s.client_id and s.organization_id):
            raise _config_error(
                method, "v3.6 bot tokens need LIVECHAT_BOT_SECRET, LIVECHAT_CLIENT_ID and LIVECHAT_ORGANIZATION_ID"
            )
        issued_at = self._clock()
        token = self.issue_bot_token(bot_id, s.bot_secret, s.client_id, s.organization_id)
        self._tokens.set(bot_id, token, issued_at + BOT_TOKEN_LIFETIME)
        return token


def _agent_authorization(settings: LiveChatSettings) -> tuple[dict[str, str] | None, str | None]:
    """The agent's auth headers (PAT first) and the encoded credential in them, to keep out of messages."""
    if settings.account_id and settings.pat:
        credential = base64.b64encode(f"{settings.account_id}:{settings.pat}".encode()).decode("ascii")
        return {"Authorization": f"Basic {credential}"}, credential
    if not settings.access_token:
        return None, None
    return bearer(settings.access_token), None


def bearer(access_token: str) -> dict[str, str]:
    """The headers that authorise with an OAuth access token."""
    headers = {"Authorization": f"Bearer {access_token}"}
    # OAuth tokens carry their data centre as a prefix ("fra:…", "fra-a:…"); the official SDKs echo it in X-Region.
    region, sep, _ = access_token.partition(":")
    if sep and region.replace("-", "").isalpha() and len(region) <= 8:
        headers["X-Region"] = region
    return headers


def _parse_error(response: requests.Response) -> ErrorInfo:
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        # LiveChat documents its error types, not its status codes: the type decides.
        data = error.get("data") if isinstance(error.get("data"), dict) else None
        return ErrorInfo(error["type"], str(error.get("message") or ""), error["type"] in TRANSIENT_TYPES, data)
    return ErrorInfo(status_type(response.status_code), response.reason or "unexpected response")


def _field(body: Any, name: str, method: str) -> Any:
    if not isinstance(body, dict) or body.get(name) in (None, ""):
        raise OutboundError("livechat", method, "invalid_response", f"the response has no {name!r}")
    return body[name]


def _owner(owner_client_id: str | None) -> dict[str, str]:
    return {"owner_client_id": owner_client_id} if owner_client_id else {}


def _config_error(method: str, message: str) -> OutboundError:
    return OutboundError("livechat", method, "configuration", message)
