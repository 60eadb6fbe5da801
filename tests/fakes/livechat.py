"""A stateful fake of the LiveChat Agent Chat and Configuration Web APIs (v3.5 / v3.6).

It speaks the documented protocol (POST ``/v<version>/<agent|configuration>/action/<method>``,
``{"error": {"type", "message"}}`` errors) and checks credentials, bot authorship and
parameters. LiveChat does not document HTTP statuses for its errors; ERROR_STATUS is our
assumption (notably ``chat_inactive`` → 422), which is why clients must branch on the type.

It serves organizations (licenses): the constructor's ``organization_id`` is the default one,
which its PAT, access token and bot belong to; ``add_organization``/``grant`` add others. Each
credential acts in its organization: chats, bots, routing statuses and the license-webhooks
state of another organization are out of its reach.
Not modelled: chat membership (any caller may post into any seeded chat of its organization),
scopes and group filters.
"""

from __future__ import annotations

import base64
import copy
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chathooks.settings import LiveChatSettings
from tests.fakes.http_server import FakeHTTPServer, Reply, Request

ERROR_STATUS = {
    "validation": 400,
    "authentication": 401,
    "authorization": 403,
    "not_found": 404,
    "request_timeout": 408,
    "misdirected_request": 421,
    "chat_inactive": 422,
    "too_many_requests": 429,
    "internal": 500,
    "service_unavailable": 503,
}
_TYPE_BY_STATUS = {status: type_ for type_, status in ERROR_STATUS.items()}

# name → (required params, optional params), each with its JSON type
AGENT_METHODS: dict[str, tuple[dict[str, type], dict[str, type]]] = {
    "get_chat": ({"chat_id": str}, {"thread_id": str}),
    "send_event": ({"chat_id": str, "event": dict}, {"attach_to_last_thread": bool}),
    "tag_thread": ({"chat_id": str, "thread_id": str, "tag": str}, {}),
    "untag_thread": ({"chat_id": str, "thread_id": str, "tag": str}, {}),
    "list_routing_statuses": ({}, {"filters": dict}),
    "set_routing_status": ({"status": str}, {"agent_id": str}),
}
CONFIGURATION_METHODS: dict[str, tuple[dict[str, type], dict[str, type]]] = {
    "register_webhook": (
        {"action": str, "secret_key": str, "url": str, "owner_client_id": str, "type": str},
        {"description": str, "filters": dict, "additional_data": list},
    ),
    "list_webhooks": ({"owner_client_id": str}, {}),
    "unregister_webhook": ({"id": str, "owner_client_id": str}, {}),
    "enable_license_webhooks": ({}, {"owner_client_id": str}),
    "disable_license_webhooks": ({}, {"owner_client_id": str}),
    "get_license_webhooks_state": ({}, {"owner_client_id": str}),
    "create_bot": (
        {"name": str},
        {
            "owner_client_id": str, "avatar": str, "max_chats_count": int, "default_group_priority": str,
            "job_title": str, "groups": list, "work_scheduler": dict, "timezone": str, "type": str,
        },
    ),
    "list_bots": ({}, {"all": bool, "fields": list}),
    "issue_bot_token": ({"bot_id": str, "client_id": str, "bot_secret": str, "organization_id": str}, {}),
    "reset_bot_secret": ({"id": str}, {}),
    "delete_bot": ({"id": str}, {}),
}
_METHODS = {"agent": AGENT_METHODS, "configuration": CONFIGURATION_METHODS}

_ACTIONS_COMMON = frozenset("""
    incoming_chat chat_deactivated chat_access_updated chat_transferred user_added_to_chat user_removed_from_chat
    incoming_event event_updated incoming_rich_message_postback chat_properties_updated chat_properties_deleted
    thread_properties_updated thread_properties_deleted event_properties_updated event_properties_deleted
    thread_tagged thread_untagged routing_status_set customer_session_fields_updated events_marked_as_seen
    group_created group_updated group_deleted agent_created agent_updated agent_deleted agent_suspended
    agent_unsuspended agent_approved bot_created bot_updated bot_deleted auto_accesses_updated
    tag_created tag_deleted tag_updated
""".split())
WEBHOOK_ACTIONS = {
    "3.5": _ACTIONS_COMMON | {"incoming_customer"},
    "3.6": _ACTIONS_COMMON | {"event_deleted", "thread_summary_set"},
}
EVENT_TYPES = frozenset({"message", "system_message", "file", "rich_message", "filled_form", "custom"})
_AGENT_STATUSES = frozenset({"accepting_chats", "not_accepting_chats"})
_BOT_STATUSES = _AGENT_STATUSES | {"offline"}


class ApiError(Exception):
    def __init__(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.data = data


@dataclass(frozen=True)
class Caller:
    id: str | None  # agent or bot id; None for an unauthenticated issue_bot_token
    credential: str  # "pat" | "access_token" | "bot_token" | "author_header" | "none"
    organization: str | None = None  # the organization it acts in; None when unauthenticated


@dataclass
class _Organization:
    agent_id: str  # the agent its access tokens act as
    license_webhooks: dict[str, bool] = field(default_factory=dict)  # owner_client_id → enabled


class FakeLiveChat(FakeHTTPServer):
    """Fake LiveChat APIs. Seed chats with ``seed_chat``; inspect ``chats``, ``bots``, ``webhooks``, ``calls()``.

    ``chats``, ``bots``, ``bot_tokens`` and ``routing_statuses`` hold every organization's
    entries; an entry a test puts there directly belongs to the default organization.
    ``license_webhooks`` is the default organization's state (``license_webhooks_of`` for others).
    """

    def __init__(
        self,
        api_version: str = "3.6",
        account_id: str = "acc-1b2c3d",
        pat: str = "pat-fra-7f3e9a1c5b",
        access_token: str = "dal:access-4c1d8e2f",
        bot_id: str = "9f3c1a7e0b2d4c6e8a1b3d5f7e9c0a2b",
        bot_secret: str = "bot-secret-5e6f7a8b",
        client_id: str = "4f0c2b9e8d7a6c5b4a3f2e1d0c9b8a7f",
        organization_id: str = "org-0a1b2c3d",
        agent_id: str = "agent@example.com",
    ) -> None:
        super().__init__()
        self.api_version = api_version
        self.account_id, self.pat, self.access_token = account_id, pat, access_token
        self.bot_id, self.bot_secret = bot_id, bot_secret
        self.client_id, self.organization_id, self.agent_id = client_id, organization_id, agent_id
        self._basic = "Basic " + base64.b64encode(f"{account_id}:{pat}".encode()).decode()
        self._seq = itertools.count(1)
        self.chats: dict[str, dict[str, Any]] = {}
        self.bots: dict[str, dict[str, Any]] = {
            bot_id: {"id": bot_id, "name": "chathooks", "secret": bot_secret, "owner_client_id": client_id}
        }
        self.bot_tokens: dict[str, str] = {}  # token → bot id
        self.bot_secrets: list[str] = [bot_secret]  # every bot secret ever handed out (for secrecy checks)
        # Both start accepting so automations act by default; tests flip them as needed.
        self.routing_statuses: dict[str, str] = {agent_id: "accepting_chats", bot_id: "accepting_chats"}
        self.webhooks: dict[str, dict[str, Any]] = {}  # per client id, not per organization
        self.license_webhooks: dict[str, bool] = {}  # the default organization's: owner_client_id → enabled
        self._organizations = {organization_id: _Organization(agent_id, self.license_webhooks)}
        self._grants: dict[str, str] = {access_token: organization_id} if access_token else {}  # token → org
        self._member_orgs: dict[str, str] = {agent_id: organization_id, bot_id: organization_id}  # agent/bot → org
        self._chat_orgs: dict[str, str] = {}  # chat id → org
        self._regions: dict[str, str] = {}  # org → the data centre its calls must name in X-Region

    # Test helpers

    def settings(self, auth: str = "pat", **overrides: Any) -> LiveChatSettings:
        """Client settings pointing here: ``auth="pat"`` (account id + PAT) or ``"token"`` (access token)."""
        values: dict[str, Any] = dict(
            api_url=self.url, api_version=self.api_version, bot_id=self.bot_id, bot_secret=self.bot_secret,
            client_id=self.client_id, organization_id=self.organization_id,
        )
        if auth == "pat":
            values.update(account_id=self.account_id, pat=self.pat)
        elif auth == "token":
            values.update(access_token=self.access_token)
        return LiveChatSettings(**(values | overrides))

    def add_organization(self, organization_id: str, access_token: str | None = None) -> None:
        """Add an organization (if new), with its agent ``agent@<organization_id>`` accepting chats;
        with ``access_token``, grant it too."""
        with self.lock:
            self._organization(organization_id)
            if access_token:
                self._grants[access_token] = organization_id

    def grant(self, organization_id: str, access_token: str) -> None:
        """Make ``access_token`` authenticate as the agent of ``organization_id`` (added if new)."""
        with self.lock:
            self._organization(organization_id)
            self._grants[access_token] = organization_id

    def withdraw(self, access_token: str) -> None:
        """Make ``access_token`` fail with ``authentication`` from now on (unknown tokens: nothing to do)."""
        with self.lock:
            self._grants.pop(access_token, None)

    def organization_of_token(self, token: str) -> str | None:
        """The organization an access token or bot token acts in; None if it authenticates nowhere."""
        with self.lock:
            if token in self.bot_tokens:
                return self._member_org(self.bot_tokens[token])
            return self._grants.get(token)

    def set_region(self, organization_id: str, region: str) -> None:
        """Make the organization's calls answer ``misdirected_request`` (naming ``region``) unless they carry
        ``X-Region: <region>``: an organization in another data centre than its token's prefix says."""
        with self.lock:
            self._regions[organization_id] = region

    def set_license_webhooks(self, organization_id: str, enabled: bool, owner_client_id: str | None = None) -> None:
        """Set an organization's license-webhooks state for ``owner_client_id`` (default: our client)."""
        with self.lock:
            self._organization(organization_id).license_webhooks[owner_client_id or self.client_id] = enabled

    def license_webhooks_of(self, organization_id: str) -> dict[str, bool]:
        """An organization's explicitly set license-webhooks states (owner_client_id → enabled; unset: enabled)."""
        with self.lock:
            return dict(self._organization(organization_id).license_webhooks)

    def bots_of(self, organization_id: str) -> list[dict[str, Any]]:
        """Copies of an organization's bots (with their secrets and owners)."""
        with self.lock:
            return [copy.deepcopy(b) for b in self.bots.values() if self._member_org(b["id"]) == organization_id]

    def chats_of(self, organization_id: str) -> list[dict[str, Any]]:
        """Copies of an organization's chats."""
        with self.lock:
            return [copy.deepcopy(c) for c in self.chats.values() if self._chat_org(c["id"]) == organization_id]

    def seed_chat(self, chat: dict[str, Any], organization: str | None = None) -> dict[str, Any]:
        """Store a chat (``{id, users, thread: {id, active?, events?, tags?}}``) in ``organization``
        (default: the default organization; added if new); return the stored copy."""
        chat = copy.deepcopy(chat)
        chat.setdefault("users", [])
        thread = chat["thread"]
        thread.setdefault("active", True)
        thread.setdefault("events", [])
        with self.lock:
            self._organization(organization or self.organization_id)
            self.chats[chat["id"]] = chat
            self._chat_orgs[chat["id"]] = organization or self.organization_id
        return copy.deepcopy(chat)

    def chat(self, chat_id: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.chats[chat_id])

    def deactivate(self, chat_id: str) -> None:
        with self.lock:
            self.chats[chat_id]["thread"]["active"] = False

    def expire_bot_tokens(self) -> None:
        """Invalidate every issued bot token (as a bot secret reset would)."""
        with self.lock:
            self.bot_tokens.clear()

    def calls(self, method: str | None = None) -> list[Request]:
        """Recorded requests, optionally only those for one API method."""
        return self.recorded(method)

    def fail_next(
        self,
        method: str,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        close: bool = False,
        times: int = 1,
        message: str | None = None,
        process: bool = False,
        chat_id: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" for any), on ``chat_id`` if given, fail.

        With ``error_type`` or ``status``: answer that error (status or type inferred from
        the other). ``delay`` alone: answer normally, late. ``close``: drop the connection.
        ``process``: carry the call out first, so only its answer is late or lost.
        """
        reply = None
        if error_type or status or not (delay or close):
            error_type = error_type or _TYPE_BY_STATUS.get(status or 500, "internal")
            body = {"error": {"type": error_type, "message": message or f"injected {error_type}"}}
            reply = Reply(status or ERROR_STATUS.get(error_type, 500), body)
        when = None if chat_id is None else (lambda r: isinstance(r.json, dict) and r.json.get("chat_id") == chat_id)
        self.fail(method, reply, retry_after, delay, close, times, process, when)

    # Protocol

    def route(self, request: Request) -> str:
        parts = request.path.strip("/").split("/")
        return parts[3] if len(parts) == 4 and parts[2] == "action" else request.path

    def handle(self, request: Request) -> Reply:
        try:
            api, method = self._resolve(request)
            caller = self._authenticate(request, api, method)
            params = self._params(request, api, method)
            return Reply(200, getattr(self, f"_{method}")(params, caller))
        except ApiError as exc:
            error = {"type": exc.type, "message": exc.message} | ({"data": exc.data} if exc.data else {})
            return Reply(ERROR_STATUS.get(exc.type, 400), {"error": error})

    def _resolve(self, request: Request) -> tuple[str, str]:
        parts = request.path.strip("/").split("/")
        if (
            request.method != "POST"
            or len(parts) != 4
            or parts[0] != f"v{self.api_version}"
            or parts[2] != "action"
            or parts[3] not in _METHODS.get(parts[1], {})
        ):
            raise ApiError("not_found", f"{request.method} {request.path} not found")
        return parts[1], parts[3]

    def _authenticate(self, request: Request, api: str, method: str) -> Caller:
        auth = request.headers.get("Authorization", "")
        author = request.headers.get("X-Author-Id")
        bearer = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        if self.pat and auth == self._basic:
            caller = Caller(self.agent_id, "pat", self.organization_id)
        elif bearer in self._grants:
            organization = self._grants[bearer]
            caller = Caller(self._organizations[organization].agent_id, "access_token", organization)
        elif bearer in self.bot_tokens:
            if api != "agent":
                raise ApiError("authorization", "bot tokens cannot call the Configuration API")
            bot_id = self.bot_tokens[bearer]
            caller = Caller(bot_id, "bot_token", self._member_org(bot_id))
        elif not auth and method == "issue_bot_token":  # documented with no required scope
            caller = Caller(None, "none")
        else:
            raise ApiError("authentication", "invalid or missing access token")
        region = self._regions.get(caller.organization or "")
        if region is not None and request.headers.get("X-Region") != region:
            raise ApiError("misdirected_request", "Wrong region", {"region": region})
        if author is None:
            return caller
        if self.api_version != "3.5":
            raise ApiError("validation", "X-Author-Id is not supported; authorize the bot with issue_bot_token")
        if api != "agent" or caller.credential == "bot_token":
            raise ApiError("validation", "X-Author-Id applies only to agent credentials on the Agent Chat API")
        if author not in self.bots or self._member_org(author) != caller.organization:
            raise ApiError("authentication", "X-Author-Id is not a known bot")
        return Caller(author, "author_header", caller.organization)

    def _params(self, request: Request, api: str, method: str) -> dict[str, Any]:
        if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise ApiError("validation", "Content-Type must be application/json")
        params = request.json if request.body else {}
        if not isinstance(params, dict):
            raise ApiError("validation", "the request body must be a JSON object")
        required, optional = _METHODS[api][method]
        for name, kind in (required | optional).items():
            if name not in params:
                if name in required:
                    raise ApiError("validation", f"`{name}` is required")
                continue
            value = params[name]
            if not isinstance(value, kind) or (kind is str and not value) or (kind is int and isinstance(value, bool)):
                raise ApiError("validation", f"`{name}` must be a non-empty {kind.__name__}")
        if unknown := sorted(set(params) - set(required) - set(optional)):
            raise ApiError("validation", f"`{unknown[0]}` is not a valid parameter")
        return params

    # Agent Chat API

    def _get_chat(self, p: dict[str, Any], caller: Caller) -> dict[str, Any]:
        chat = self._chat(caller, p["chat_id"], p.get("thread_id"))
        return copy.deepcopy(chat)

    def _send_event(self, p: dict[str, Any], caller: Caller) -> dict[str, Any]:
        chat = self._chat(caller, p["chat_id"])
        event = p["event"]
        if event.get("type") not in EVENT_TYPES:
            raise ApiError("validation", "`event.type` is invalid")
        if event["type"] == "message" and not (isinstance(event.get("text"), str) and event["text"].strip()):
            raise ApiError("validation", "`event.text` is required")
        if event.get("visibility", "all") not in ("all", "agents"):
            raise ApiError("validation", "`event.visibility` must be all or agents")
        thread = chat["thread"]
        if not thread["active"]:
            raise ApiError("chat_inactive", "the chat is inactive")
        event_id = f"{thread['id']}_{next(self._seq)}"
        thread["events"].append(
            {
                **copy.deepcopy(event),
                "id": event_id,
                "author_id": caller.id,
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
                "visibility": event.get("visibility", "all"),
            }
        )
        return {"event_id": event_id}

    def _tag_thread(self, p: dict[str, Any], caller: Caller) -> None:
        tags = self._chat(caller, p["chat_id"], p["thread_id"])["thread"].setdefault("tags", [])
        if p["tag"] not in tags:
            tags.append(p["tag"])

    def _untag_thread(self, p: dict[str, Any], caller: Caller) -> None:
        thread = self._chat(caller, p["chat_id"], p["thread_id"])["thread"]
        if p["tag"] in thread.get("tags", []):
            thread["tags"].remove(p["tag"])

    def _list_routing_statuses(self, p: dict[str, Any], caller: Caller) -> list[dict[str, str]]:
        group_ids = p.get("filters", {}).get("group_ids", [])
        if not isinstance(group_ids, list) or not all(isinstance(g, int) for g in group_ids):
            raise ApiError("validation", "`filters.group_ids` must be a list of integers")
        return [
            {"agent_id": agent_id, "status": status}
            for agent_id, status in self.routing_statuses.items()
            if self._member_org(agent_id) == caller.organization
        ]

    def _set_routing_status(self, p: dict[str, Any], caller: Caller) -> None:
        target = p.get("agent_id") or caller.id
        if target not in self.routing_statuses or self._member_org(target) != caller.organization:
            raise ApiError("not_found", "agent not found")
        if caller.credential == "bot_token" and target != caller.id:
            raise ApiError("authorization", "a bot may only set its own routing status")
        if p["status"] not in (_BOT_STATUSES if target in self.bots else _AGENT_STATUSES):
            raise ApiError("validation", "`status` is invalid")
        self.routing_statuses[target] = p["status"]

    def _chat(self, caller: Caller, chat_id: str, thread_id: str | None = None) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError("not_found", "chat not found")
        if self._chat_org(chat_id) != caller.organization:
            raise ApiError("authorization", "the chat belongs to another organization")
        if thread_id is not None and chat["thread"]["id"] != thread_id:
            raise ApiError("not_found", "thread not found")
        return chat

    # Configuration API

    def _register_webhook(self, p: dict[str, Any], caller: Caller) -> dict[str, str]:
        if p["action"] not in WEBHOOK_ACTIONS[self.api_version]:
            raise ApiError("validation", "`action` is invalid")
        if p["type"] not in ("license", "bot"):
            raise ApiError("validation", "`type` must be license or bot")
        if not p["url"].startswith(("http://", "https://")) or len(p["url"]) > 500:
            raise ApiError("validation", "`url` must be an http(s) URL of at most 500 characters")
        if not set(p.get("additional_data", [])) <= {"chat_properties", "chat_presence_user_ids"}:
            raise ApiError("validation", "`additional_data` is invalid")
        webhook_id = uuid.uuid4().hex
        self.webhooks[webhook_id] = {"id": webhook_id, "filters": {}, "description": "", **copy.deepcopy(p)}
        return {"id": webhook_id}

    def _list_webhooks(self, p: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
        # The documented response shows no secret_key.
        return [
            {k: v for k, v in w.items() if k != "secret_key"}
            for w in self.webhooks.values()
            if w["owner_client_id"] == p["owner_client_id"]
        ]

    def _unregister_webhook(self, p: dict[str, Any], caller: Caller) -> None:
        webhook = self.webhooks.get(p["id"])
        if webhook is None or webhook["owner_client_id"] != p["owner_client_id"]:
            raise ApiError("not_found", "webhook not found")
        del self.webhooks[p["id"]]

    def _enable_license_webhooks(self, p: dict[str, Any], caller: Caller) -> None:
        self._license_webhooks(caller)[self._owner(p, caller)] = True

    def _disable_license_webhooks(self, p: dict[str, Any], caller: Caller) -> None:
        self._license_webhooks(caller)[self._owner(p, caller)] = False

    def _get_license_webhooks_state(self, p: dict[str, Any], caller: Caller) -> dict[str, bool]:
        return {"license_webhooks_enabled": self._license_webhooks(caller).get(self._owner(p, caller), True)}

    def _create_bot(self, p: dict[str, Any], caller: Caller) -> dict[str, str]:
        owner = self._owner(p, caller)
        if "type" in p and self.api_version == "3.5":
            raise ApiError("validation", "`type` is not a valid parameter")
        if not 1 <= p.get("max_chats_count", 6) <= 500:
            raise ApiError("validation", "`max_chats_count` must be between 1 and 500")
        bot_id, secret = uuid.uuid4().hex, uuid.uuid4().hex
        self.bots[bot_id] = {**copy.deepcopy(p), "id": bot_id, "secret": secret, "owner_client_id": owner}
        self._member_orgs[bot_id] = caller.organization
        self.routing_statuses[bot_id] = "not_accepting_chats"
        self.bot_secrets.append(secret)
        return {"id": bot_id, "secret": secret}

    def _list_bots(self, p: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
        avatar = "avatar_path" if self.api_version != "3.5" else "avatar"
        return [
            {"id": b["id"], "name": b["name"], avatar: b.get("avatar", "")}
            | {f: b[f] for f in p.get("fields", []) if f in b}
            for b in self.bots.values()
            if self._member_org(b["id"]) == caller.organization
        ]

    def _issue_bot_token(self, p: dict[str, Any], caller: Caller) -> dict[str, str]:
        bot = self.bots.get(p["bot_id"])
        if bot is None:
            raise ApiError("not_found", "bot not found")
        if (p["bot_secret"], p["client_id"], p["organization_id"]) != (
            bot["secret"], bot["owner_client_id"], self._member_org(bot["id"]),
        ):
            raise ApiError("authentication", "invalid bot credentials")
        token = f"bot.{uuid.uuid4().hex}"
        self.bot_tokens[token] = bot["id"]
        return {"token": token}

    def _reset_bot_secret(self, p: dict[str, Any], caller: Caller) -> dict[str, str]:
        # Bot tokens issued with the old secret stay valid (they cannot be revoked).
        bot = self._own_bot(p["id"], caller)
        bot["secret"] = uuid.uuid4().hex
        self.bot_secrets.append(bot["secret"])
        return {"secret": bot["secret"]}

    def _delete_bot(self, p: dict[str, Any], caller: Caller) -> dict[str, Any]:
        bot_id = self._own_bot(p["id"], caller)["id"]
        del self.bots[bot_id]
        self.routing_statuses.pop(bot_id, None)
        self._member_orgs.pop(bot_id, None)
        for token in [t for t, b in self.bot_tokens.items() if b == bot_id]:
            del self.bot_tokens[token]
        return {}

    def _own_bot(self, bot_id: str, caller: Caller) -> dict[str, Any]:
        """The bot ``bot_id`` if it is in the caller's organization (else ``not_found``)."""
        bot = self.bots.get(bot_id)
        if bot is None or self._member_org(bot_id) != caller.organization:
            raise ApiError("not_found", "bot not found")
        return bot

    def _owner(self, p: dict[str, Any], caller: Caller) -> str:
        # With a Bearer token the token's own client is assumed; a PAT must name one.
        owner = p.get("owner_client_id") or (self.client_id if caller.credential == "access_token" else None)
        if owner is None:
            raise ApiError("validation", "`owner_client_id` is required")
        return owner

    def _license_webhooks(self, caller: Caller) -> dict[str, bool]:
        return self._organizations[caller.organization].license_webhooks

    # Organizations

    def _organization(self, organization_id: str) -> _Organization:
        """The organization, added (with its agent accepting chats) if new."""
        if organization_id not in self._organizations:
            agent_id = f"agent@{organization_id}"
            self._organizations[organization_id] = _Organization(agent_id)
            self._member_orgs[agent_id] = organization_id
            self.routing_statuses[agent_id] = "accepting_chats"
        return self._organizations[organization_id]

    def _member_org(self, member_id: str) -> str:
        """The organization of an agent or bot (default organization for one a test added directly)."""
        return self._member_orgs.get(member_id, self.organization_id)

    def _chat_org(self, chat_id: str) -> str:
        """The organization of a chat (default organization for one a test stored directly)."""
        return self._chat_orgs.get(chat_id, self.organization_id)
