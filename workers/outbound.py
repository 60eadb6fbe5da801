"""Everything the automations do to the outside world, live or dry-run, and the record of it.

Chats are acted on through the platform they came from (``Chats``, over the platform's
``ChatAPI``); the marketing list is a destination beside them. A platform with no credentials
for it (or every platform, with CHATHOOKS_DRY_RUN=1) is dry-run: its writes — tags, bot
messages — are logged and recorded instead of sent. Reads still use the API when credentials
exist, and answer "unknown" (None) when they don't. List upserts are dry-run when the whole
system is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import redis

from chathooks.http import DEFAULT_TIMEOUT
from chathooks.json_codec import dumps
from chathooks.keys import Keys
from chathooks.mailchimp import MailchimpClient, split_name
from chathooks.platforms.base import ChatAPI, ChatRef, Thread
from chathooks.platforms.registry import PLATFORMS
from chathooks.rules import MarketingRule, Rules, load_rules
from chathooks.settings import Settings
from workers.journal import Journal
from workers.tenancy import Tenancy

log = logging.getLogger("chathooks.outbound")

RECORD_LIMIT = 1000
RECORD_TTL = 24 * 3600
# A handler makes a few calls in a row (routing status, get_chat, a send): each must fail well inside the task's
# time limit, as a retried timeout, rather than have the limit end the whole task.
CALLS_PER_TASK = 4

Effect = Literal["tag", "message"]
EFFECT_NAMES = {"tag": "tag", "message": "bot_message"}  # as ``chathooks chat`` names them


def client_timeout(settings: Settings) -> tuple[float, float]:
    """Connect and read timeouts for the API clients: the defaults, shortened to fit the task time limit."""
    share = settings.task_time_limit_seconds / CALLS_PER_TASK
    connect, read = DEFAULT_TIMEOUT
    return min(connect, share), min(read, share)


class Record:
    """A bounded, expiring log of what was done (``chathooks simulate`` shows it).

    In a worker its entries (and the skips they count) are written with the task's journal, in the
    round trip that ends the task; on its own, at once.
    """

    def __init__(self, client: redis.Redis, key: str, metrics_key: str | None = None) -> None:
        self._redis = client
        self._key = key
        self._metrics_key = metrics_key
        self.journal: Journal | None = None

    def add(self, action: str, outcome: str, *, skipped: str | None = None, **params: Any) -> None:
        """Log and keep one entry; ``skipped``: the reason code it counts under (``SKIP_REASONS``)."""
        entry = dumps({"action": action, "outcome": outcome, "at": time.time(), **params}, default=str).decode()
        log.info("%s %s %s", outcome, action, dumps(params, sort_keys=True, default=str).decode())
        if self.journal is not None:
            self.journal.later(lambda pipe: write_entries(pipe, self._key, [entry]))
            if skipped:
                self.journal.count(f"skipped:{skipped}")
            return
        with self._redis.pipeline(transaction=False) as pipe:
            write_entries(pipe, self._key, [entry])
            if skipped and self._metrics_key:
                pipe.hincrby(self._metrics_key, f"skipped:{skipped}", 1)
            pipe.execute()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in reversed(self._redis.lrange(self._key, 0, -1))]


def write_entries(pipe: redis.client.Pipeline, key: str, entries: list[str]) -> None:
    """Entries onto the record at ``key``, newest first, bounded and expiring."""
    pipe.lpush(key, *entries)
    pipe.ltrim(key, 0, RECORD_LIMIT - 1)
    pipe.expire(key, RECORD_TTL)


class Chats:
    """One platform's chats: reads through its ``ChatAPI``, writes sent or (dry-run) only recorded."""

    def __init__(self, api: ChatAPI, dry_run: bool, record: Record) -> None:
        self.api = api
        self.dry_run = dry_run
        self._record = record
        self.journal: Journal | None = None  # the chats' stories (``Outbound.attach``)

    @property
    def bot_id(self) -> str | None:
        return self.api.bot_id

    @property
    def bot_ids(self) -> frozenset[str]:
        return self.api.bot_ids

    @property
    def no_bot(self) -> str:
        return self.api.no_bot

    # --- reads --------------------------------------------------------------------------

    def fetch_thread(self, chat: ChatRef) -> Thread | None:
        return self.api.fetch_thread(chat)

    def thread_active(self, chat: ChatRef) -> bool | None:
        return self.api.thread_active(chat)

    def bot_message_landed(self, chat: ChatRef, custom_id: str, text: str, since: float) -> bool:
        return self.api.bot_message_landed(chat, custom_id, text, since)

    def untaggable(self, tag: str) -> str | None:
        return self.api.untaggable(tag)

    def tag_landed(self, chat: ChatRef, tag: str) -> bool:
        return self.api.tag_landed(chat, tag)

    def bot_status(self) -> str | None:
        return self.api.bot_status()

    # --- writes -------------------------------------------------------------------------

    def tag(self, chat: ChatRef, tag: str) -> None:
        self._write("tag", chat, lambda: self.api.tag(chat, tag), thread_id=chat.thread_id, tag=tag)

    def post_bot_message(self, chat: ChatRef, text: str, custom_id: str) -> None:
        """Post ``text`` as the bot; ``custom_id`` lets a crashed attempt's message be recognised."""
        self._write("message", chat, lambda: self.api.post_bot_message(chat, text, custom_id),
                    text=text, custom_id=custom_id)

    def skipped(self, effect: Effect, chat: ChatRef, reason: str, *, code: str, **params: Any) -> None:
        """Record an effect not sent and why (``reason``), and count it under ``code`` (``SKIP_REASONS``)."""
        self._record.add(self._method(effect), "skipped", skipped=code, chat_id=chat.chat_id, **params, reason=reason)
        self._tell(effect, chat, "skipped", code, params)

    def already_done(self, effect: Effect, chat: ChatRef, **params: Any) -> None:
        """An effect found done by an earlier attempt: told and counted, not recorded again."""
        if self.journal is not None:
            self.journal.count("skipped:already_done")
        self._tell(effect, chat, "skipped", "already_done", params)

    def _write(self, effect: Effect, chat: ChatRef, call: Callable[[], None], **params: Any) -> None:
        method = self._method(effect)
        if self.dry_run or not self.api.live:
            self._record.add(method, "dry-run", skipped="dry_run", chat_id=chat.chat_id, **params)
            self._tell(effect, chat, "skipped", "dry_run", params)
            return
        call()
        self._record.add(method, "sent", chat_id=chat.chat_id, **params)
        self._tell(effect, chat, "sent", None, params)

    def _method(self, effect: Effect) -> str:
        return self.api.tag_method if effect == "tag" else self.api.message_method

    def _tell(self, effect: Effect, chat: ChatRef, outcome: str, reason: str | None, params: dict[str, Any]) -> None:
        if self.journal is not None:  # the story names the tag, never the message's text
            self.journal.effect(chat.chat_id, chat.thread_id, EFFECT_NAMES[effect], outcome, source=chat.source,
                                reason=reason, method=self._method(effect), tag=params.get("tag"))


class Outbound:
    def __init__(self, settings: Settings, client: redis.Redis, record_key: str, apis: Mapping[str, ChatAPI],
                 mailchimp: MailchimpClient | None = None, tenancy: Tenancy | None = None) -> None:
        self.dry_run = settings.dry_run
        self._record = Record(client, record_key, Keys(settings.key_prefix).metrics)
        self._chats = {source: Chats(api, settings.platform_dry_run(PLATFORMS[source].has_credentials(settings)),
                                     self._record)
                       for source, api in apis.items()}
        self._mailchimp = mailchimp
        self.tenancy = tenancy
        self._tenant_dry_run = settings.platform_dry_run(True)
        self._tenant_chats: dict[str, Chats] = {}  # by organization
        self._journal: Journal | None = None

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis, rules: Rules | None = None) -> Outbound:
        timeout, rules = client_timeout(settings), rules or load_rules(settings.rules_path)
        apis = {source: platform.api(settings, client, timeout, rules) for source, platform in PLATFORMS.items()}
        mailchimp = MailchimpClient(settings.mailchimp, timeout=timeout) if settings.mailchimp else None
        tenancy = Tenancy(settings, client, timeout) if settings.marketplace else None
        return cls(settings, client, Keys(settings.key_prefix).outbound, apis, mailchimp, tenancy)

    def attach(self, journal: Journal) -> None:
        """Tell ``journal`` every effect from now on; the record is written with it."""
        self._record.journal = journal
        self._journal = journal
        for chats in (*self._chats.values(), *self._tenant_chats.values()):
            chats.journal = journal

    def chats(self, source: str, organization: str | None = None) -> Chats:
        """The platform the events of ``source`` came from, as ``organization`` (when it is a tenant's) acts."""
        if self.tenancy is not None and self.tenancy.serves(source, organization):
            api = self.tenancy.api(organization)  # raises TenantInactive for one that cannot be acted for
            assert organization is not None  # a tenant's events name their organization
            chats = self._tenant_chats.get(organization)
            if chats is None or chats.api is not api:
                chats = self._tenant_chats[organization] = Chats(api, self._tenant_dry_run, self._record)
                chats.journal = self._journal
            return chats
        try:
            return self._chats[source]
        except KeyError:
            raise LookupError(f"no platform acts on chats from {source!r}") from None

    def upsert_member(self, email: str, name: str | None, rule: MarketingRule) -> bool:
        """Upsert into the marketing list; False when list sync is not configured."""
        first, last = split_name(name)
        params = dict(email=email, first_name=first, last_name=last, status_if_new=rule.status_if_new,
                      tags=list(rule.tags))
        if self.dry_run:
            self._record.add("upsert_member", "dry-run", skipped="dry_run", **params)
            return True
        if self._mailchimp is None:
            return False
        self._mailchimp.upsert_member(email, first_name=first, last_name=last,
                                      status_if_new=rule.status_if_new, tags=rule.tags)
        self.record("upsert_member", "sent", **params)
        return True

    def record(self, action: str, outcome: str, **params: Any) -> None:
        self._record.add(action, outcome, **params)

    def records(self) -> list[dict[str, Any]]:
        return self._record.entries()
