"""Everything the automations do to the outside world, live or dry-run, and the record of it.

In dry-run mode (no LiveChat credentials, or CHATHOOKS_DRY_RUN=1) writes — tags, messages,
list upserts — are logged and recorded instead of sent; reads (``get_chat``, routing status)
still use the API when credentials exist, and answer "unknown" (None) when they don't.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from chathooks.keys import Keys
from chathooks.rules import MarketingRule
from chathooks.settings import Settings
from workers.clients.http import DEFAULT_TIMEOUT
from workers.clients.livechat import LiveChatClient, RedisTokenCache
from workers.clients.mailchimp import MailchimpClient, split_name

log = logging.getLogger("chathooks.outbound")

RECORD_LIMIT = 1000
RECORD_TTL = 24 * 3600
# A handler makes a few calls in a row (routing status, get_chat, a send): each must fail well inside the task's
# time limit, as a retried timeout, rather than have the limit end the whole task.
CALLS_PER_TASK = 4


def client_timeout(settings: Settings) -> tuple[float, float]:
    """Connect and read timeouts for the API clients: the defaults, shortened to fit the task time limit."""
    share = settings.task_time_limit_seconds / CALLS_PER_TASK
    connect, read = DEFAULT_TIMEOUT
    return min(connect, share), min(read, share)


class Outbound:
    def __init__(self, settings: Settings, client: redis.Redis, record_key: str,
                 livechat: LiveChatClient | None = None, mailchimp: MailchimpClient | None = None) -> None:
        self.dry_run = settings.dry_run
        self.bot_id = settings.livechat.bot_id
        self._redis = client
        self._record_key = record_key
        self._livechat = livechat
        self._mailchimp = mailchimp

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis) -> Outbound:
        livechat, timeout = None, client_timeout(settings)
        if settings.livechat.has_credentials:
            cache = RedisTokenCache(client, f"{settings.key_prefix}bot-token:")
            livechat = LiveChatClient(settings.livechat, timeout=timeout, token_cache=cache)
        mailchimp = MailchimpClient(settings.mailchimp, timeout=timeout) if settings.mailchimp else None
        return cls(settings, client, Keys(settings.key_prefix).outbound, livechat, mailchimp)

    # --- writes -------------------------------------------------------------------------

    def tag_thread(self, chat_id: str, thread_id: str, tag: str) -> None:
        self._write("tag_thread", lambda lc: lc.tag_thread(chat_id, thread_id, tag),
                    chat_id=chat_id, thread_id=thread_id, tag=tag)

    def send_message(self, chat_id: str, text: str, custom_id: str) -> None:
        """Send ``text`` into the chat as the bot; ``custom_id`` lets a crashed attempt be recognised."""
        event = {"type": "message", "text": text, "visibility": "all", "custom_id": custom_id}
        self._write("send_event", lambda lc: lc.send_event(chat_id, event, as_bot=True),
                    chat_id=chat_id, text=text, custom_id=custom_id)

    def upsert_member(self, email: str, name: str | None, rule: MarketingRule) -> bool:
        """Upsert into the marketing list; False when list sync is not configured."""
        first, last = split_name(name)
        params = dict(email=email, first_name=first, last_name=last, status_if_new=rule.status_if_new,
                      tags=list(rule.tags))
        if self.dry_run:
            self.record("upsert_member", "dry-run", **params)
            return True
        if self._mailchimp is None:
            return False
        self._mailchimp.upsert_member(email, first_name=first, last_name=last,
                                      status_if_new=rule.status_if_new, tags=rule.tags)
        self.record("upsert_member", "sent", **params)
        return True

    # --- reads --------------------------------------------------------------------------

    def get_chat(self, chat_id: str, thread_id: str | None = None) -> dict[str, Any] | None:
        return self._livechat.get_chat(chat_id, thread_id) if self._livechat else None

    def sent(self, chat_id: str, custom_id: str) -> bool:
        """Whether the chat's latest thread holds an event with ``custom_id`` (a send that landed)."""
        return any(e.get("custom_id") == custom_id for e in self._thread(chat_id).get("events") or ())

    def tagged(self, chat_id: str, thread_id: str, tag: str) -> bool:
        """Whether LiveChat shows ``tag`` on the thread."""
        return tag in (self._thread(chat_id, thread_id).get("tags") or ())

    def _thread(self, chat_id: str, thread_id: str | None = None) -> dict[str, Any]:
        return (self.get_chat(chat_id, thread_id) or {}).get("thread") or {}

    def routing_status(self, agent_id: str) -> str | None:
        if self._livechat is None:
            return None
        for row in self._livechat.list_routing_statuses():
            if row.get("agent_id") == agent_id:
                return str(row.get("status", "")).replace(" ", "_")
        return None

    # --- record -------------------------------------------------------------------------

    def record(self, action: str, outcome: str, **params: Any) -> None:
        """Keep a bounded, expiring log of what was done (``chathooks simulate`` shows it)."""
        entry = {"action": action, "outcome": outcome, "at": time.time(), **params}
        log.info("%s %s %s", outcome, action, json.dumps(params, sort_keys=True, default=str))
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(self._record_key, json.dumps(entry, default=str))
            pipe.ltrim(self._record_key, 0, RECORD_LIMIT - 1)
            pipe.expire(self._record_key, RECORD_TTL)
            pipe.execute()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in reversed(self._redis.lrange(self._record_key, 0, -1))]

    def _write(self, action: str, call, **params: Any) -> None:  # type: ignore[no-untyped-def]
        if self.dry_run or self._livechat is None:
            self.record(action, "dry-run", **params)
            return
        call(self._livechat)
        self.record(action, "sent", **params)
