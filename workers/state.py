"""What the workers remember about chats: who is who, which threads ended, tags, bot status.

Only small facts are kept (roles, tag names, flags), never transcripts. Every key expires:
``chat_ttl`` while a chat is live, the shorter ``ended_ttl`` once its thread has ended, so
late and reordered deliveries still find what they need and memory returns to baseline.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from chathooks.events import Role, User
from chathooks.keys import Keys
from chathooks.redis_client import PackedScript

ROUTING_TTL = 3600  # a remembered routing status is refreshed from the API after this


# KEYS: the tag set, the thread's ended marker. ARGV: live TTL, ended TTL, tags. Kept as long as the thread's
# other state: the ended chat's shorter TTL once it has ended. Returns 1 if it has (a tag matched after the end is
# applied at once). Adding and looking are one step: the end is marked before its tags are read, so a tag is
# either seen by the end or sees the end.
_ADD_TAGS = """
redis.call('SADD', KEYS[1], unpack(ARGV, 3))
local ended = redis.call('EXISTS', KEYS[2])
local ttl = ARGV[1]
if ended == 1 then ttl = ARGV[2] end
redis.call('EXPIRE', KEYS[1], ttl)
return ended
"""


class ChatState:
    def __init__(self, client: redis.Redis, prefix: str, chat_ttl: int, ended_ttl: int) -> None:
        self._redis = client
        self._p = prefix
        self._keys = Keys(prefix)
        self.chat_ttl = chat_ttl
        self.ended_ttl = ended_ttl
        self._add_tags = PackedScript(client, _ADD_TAGS)

    # --- people -------------------------------------------------------------------------

    def roles_key(self, chat_id: str) -> str:
        """A hash: user id to role (``Role``'s values), for every person of the chat we know of."""
        return f"{self._p}roles:{chat_id}"

    def _names(self, chat_id: str) -> str:
        return f"{self._p}names:{chat_id}"

    def remember_users(self, chat_id: str, users: Iterable[User], bot_ids: frozenset[str]) -> None:
        users = [u for u in users if u.type in ("customer", "agent")]
        roles = {u.id: (Role.BOT if u.id in bot_ids else Role(u.type)).value for u in users}
        names = {u.id: u.name for u in users if u.type == "customer" and u.name}
        if not roles:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.roles_key(chat_id), mapping=roles)
            pipe.expire(self.roles_key(chat_id), self.chat_ttl)
            if names:
                pipe.hset(self._names(chat_id), mapping=names)
                pipe.expire(self._names(chat_id), self.chat_ttl)
            pipe.execute()

    def role(self, chat_id: str, user_id: str) -> Role | None:
        value = self._redis.hget(self.roles_key(chat_id), user_id)
        return Role(value.decode()) if value else None

    def customer_name(self, chat_id: str, user_id: str) -> str | None:
        value = self._redis.hget(self._names(chat_id), user_id)
        return value.decode() if value else None

    # --- threads ------------------------------------------------------------------------

    def tags_key(self, thread_id: str, part: str) -> str:
        return self._keys.thread(thread_id, part)

    def end_thread(self, chat_id: str, thread_id: str) -> None:
        """Mark the thread ended and shorten the life of everything kept about it."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.ended_key(thread_id), "1", ex=self.ended_ttl)
            for part in ("matched", "applied"):
                pipe.expire(self._keys.thread(thread_id, part), self.ended_ttl)
            pipe.expire(self.roles_key(chat_id), self.ended_ttl)
            pipe.expire(self._names(chat_id), self.ended_ttl)
            pipe.execute()

    def ended_key(self, thread_id: str) -> str:
        """Exists while the thread is known to have ended (for the ended chat's TTL)."""
        return self._keys.thread(thread_id, "ended")

    def has_ended(self, thread_id: str) -> bool:
        return bool(self._redis.exists(self.ended_key(thread_id)))

    def add_tags(self, thread_id: str, part: str, tags: Iterable[str]) -> bool:
        """``part`` is "matched" (rules matched) or "applied" (known to be on the thread). Returns whether the
        thread has ended, as it was when the tags were added (False when there were none to add)."""
        tags = list(tags)
        if not tags:
            return False
        ended, _ = self._add_tags([self._keys.thread(thread_id, part), self.ended_key(thread_id)],
                                  [self.chat_ttl, self.ended_ttl, *tags])
        return bool(ended)

    def remove_tag(self, thread_id: str, part: str, tag: str) -> None:
        self._redis.srem(self._keys.thread(thread_id, part), tag)

    def tags(self, thread_id: str, part: str) -> set[str]:
        return self.tag_sets(thread_id, part)[0]

    def tag_sets(self, thread_id: str, *parts: str) -> list[set[str]]:
        """The tags of each of ``parts``, read in one round trip."""
        with self._redis.pipeline(transaction=False) as pipe:
            for part in parts:
                pipe.smembers(self._keys.thread(thread_id, part))
            return [{t.decode() for t in members} for members in pipe.execute()]

    # --- bot routing status -------------------------------------------------------------

    def set_routing_status(self, agent_id: str, status: str) -> None:
        self._redis.set(f"{self._p}routing:{agent_id}", status, ex=ROUTING_TTL)

    def routing_status(self, agent_id: str) -> str | None:
        value = self._redis.get(f"{self._p}routing:{agent_id}")
        return value.decode() if value else None
