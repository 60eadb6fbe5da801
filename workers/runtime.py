"""What handlers need, built once per worker process and passed to them explicitly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import redis
from celery import Celery

from chathooks.events import Event, Role
from chathooks.keys import Keys
from chathooks.metrics import Metrics
from chathooks.observed import OBSERVATIONS
from chathooks.platforms.base import ChatRef
from chathooks.profiles import Profiles
from chathooks.redis_client import state_client
from chathooks.rules import Rules, load_rules
from chathooks.settings import Settings
from workers.dead_letters import DeadLetters
from workers.journal import Journal
from workers.once import Once
from workers.outbound import Outbound
from workers.retry import RetryPolicy
from workers.scheduler import Scheduler
from workers.state import ChatState
from workers.trigger_state import TriggerState

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    keys: Keys
    rules: Rules
    state: ChatState
    once: Once
    scheduler: Scheduler
    outbound: Outbound
    dead_letters: DeadLetters
    profiles: Profiles
    triggers: TriggerState
    journal: Journal
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time
    _other_once: Once | None = field(default=None, repr=False)
    _last_role: tuple[tuple[str, str | None, str | None] | None, Role | None] = field(default=(None, None), repr=False)

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis | None = None, *, rules: Rules | None = None,
              outbound: Outbound | None = None, **overrides) -> Runtime:  # type: ignore[no-untyped-def]
        client = client or state_client(settings, redis_timeout(settings))
        p = settings.key_prefix
        rules = rules or load_rules(settings.rules_path)
        scheduler = Scheduler(client, p)
        state = ChatState(client, p, settings.chat_ttl_seconds, settings.ended_chat_ttl_seconds)
        journal = Journal(client, Keys(p), OBSERVATIONS, max_events=settings.timeline_max_events,
                          chat_ttl=settings.chat_ttl_seconds, ended_ttl=settings.ended_chat_ttl_seconds)
        outbound = outbound or Outbound.build(settings, client, rules)
        outbound.attach(journal)
        return cls(
            settings=settings,
            redis=client,
            keys=Keys(p),
            rules=rules,
            state=state,
            once=_once(client, settings, settings.dry_run, journal),
            scheduler=scheduler,
            outbound=outbound,
            dead_letters=DeadLetters(client, p),
            profiles=Profiles(client, Keys(p), settings.profile_ttl_seconds, settings.chat_ttl_seconds,
                              later=journal.later, lasting=journal.lasting),
            triggers=TriggerState(client, p, scheduler.key, settings.chat_ttl_seconds, settings.ended_chat_ttl_seconds),
            journal=journal,
            retry=overrides.pop("retry", None) or RetryPolicy(
                settings.retry_base_seconds, settings.retry_cap_seconds, settings.retry_max_attempts),
            **overrides,
        )

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics(self.redis, self.keys)

    def once_for(self, dry_run: bool) -> Once:
        """The once-guards of effects that are dry-run or live: dry-run effects never count as done live."""
        if dry_run == self.settings.dry_run:
            return self.once
        if self._other_once is None:
            self._other_once = _once(self.redis, self.settings, dry_run, self.journal)
        return self._other_once

    def author_role(self, event: Event) -> Role | None:
        """Customer, agent or bot: from the event, what we remember of the chat, or ``get_chat``.

        Several handlers ask about the same event in turn; the last answer found is kept for them.
        """
        role = self.evident_role(event)
        if role is None and event.author_id is not None and event.chat_id:
            role = self.state.role(event.chat_id, event.author_id)
            if role is None:
                chats = self.outbound.chats(event.source, event.organization)
                thread = chats.fetch_thread(ChatRef.of(event))
                if thread:
                    self.state.remember_users(event.chat_id, thread.users, chats.bot_ids)
                    role = self.state.role(event.chat_id, event.author_id)
            self.found_role(event, role)
        return role

    def evident_role(self, event: Event) -> Role | None:
        """The author's role where no round trip is needed to know it (the event's own word, our bots' ids, the
        last answer found); None when only what we remember of the chat, or the platform, can tell."""
        last_asked, last_role = self._last_role
        if last_asked == _asked(event):
            return last_role
        if event.author_role in (Role.BOT, Role.SYSTEM) or event.author_id is None:
            return event.author_role
        if event.author_id in self.outbound.chats(event.source, event.organization).bot_ids:
            return Role.BOT
        return event.author_role

    def found_role(self, event: Event, role: Role | None) -> None:
        """The author's role, looked up (by a handler that read the chat's roles with its own state): kept for
        the other handlers of the event."""
        if role is not None:
            self._last_role = (_asked(event), role)


def _asked(event: Event) -> tuple[str, str | None, str | None]:
    return event.key, event.chat_id, event.author_id


REDIS_TIMEOUT = 10.0  # a worker's Redis calls: scripts and pipelines of a task, never a blocking read


def redis_timeout(settings: Settings) -> float:
    """A worker's Redis socket timeout, shortened to a quarter of the task time limit: a call hung on a
    Redis that is restarting fails in time for the task to give its message back (``through_redis_outages``)
    before the time limit kills it, which would ack the message with its work undone."""
    return min(REDIS_TIMEOUT, settings.task_time_limit_seconds / 4)


def _once(client: redis.Redis, settings: Settings, dry_run: bool, journal: Journal) -> Once:
    # Dry-run effects were never sent: they must not count as done once live.
    # The lease outlasts any task, so a claim is never taken over while its effect may still run.
    return Once(client, settings.key_prefix + ("dry-run:" if dry_run else ""),
                lease_seconds=settings.task_time_limit_seconds, done_ttl=settings.dedupe_ttl_seconds,
                wait_ms=settings.redis_wait_ms, defer=journal.lasting)


_runtimes: dict[int, Runtime] = {}


def runtime_for(app: Celery) -> Runtime:
    """The process's runtime for ``app`` (tests may install their own with ``install``)."""
    rt = _runtimes.get(id(app))
    if rt is None:
        rt = _runtimes[id(app)] = Runtime.build(app.chathooks_settings)  # type: ignore[attr-defined]
    return rt


def install(app: Celery, runtime: Runtime) -> None:
    _runtimes[id(app)] = runtime


def flush_all() -> None:
    """Write what every runtime of the process holds, observations included (a process stopping)."""
    for rt in _runtimes.values():
        try:
            rt.journal.flush(force_observations=True)
        except redis.RedisError as exc:
            log.warning("observations not written at shutdown: %s", exc)
