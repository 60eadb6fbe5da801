"""What triggers keep of each thread in Redis, and the one decision per evaluation.

Per thread: a hash (the clocks as the events' own times, the last author, the last customer
message's test results, email, rating, the platform attributes the triggers read, and per
trigger whether its window is spent and how many windows fired)
and a sorted set of its customer and agent messages (a short digest each, by time) that
dedupes redeliveries and gives the count and the customers' messages in a row. No message
text is kept.

Every change is one script that also returns the state, so an event costs one round trip.
A decision (fire, reopen, the next evaluation's moment) is applied only if the state is
unchanged since it was read (a version compare-and-set), so workers evaluating one thread
at once never fire a window twice or on stale state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from chathooks.triggers.conditions import ThreadView

# KEYS: state, messages, applied tags. ARGV: op (msg|end|left|seen|read), time, live ttl, ended ttl,
# source, organization, chat id, role (c|a|b), message digest, test results, read tags (1|0), then field/value
# pairs to set ('' deletes; a:<name> the platform's attributes). Times travel as the caller's strings so no
# precision is lost in Lua.
_OBSERVE = """
local h, m = KEYS[1], KEYS[2]
local op, t = ARGV[1], tonumber(ARGV[2])
-- Keep the later time in field f; on a tie (LHC's clock has whole seconds) the message that arrived last wins.
local function later(f, ties)
  local v = redis.call('HGET', h, f)
  if v == false or t > tonumber(v) or (ties and t == tonumber(v)) then
    redis.call('HSET', h, f, ARGV[2])
    return true
  end
  return false
end
if op ~= 'read' then
  if redis.call('HSETNX', h, 'src', ARGV[5]) == 1 then redis.call('HSET', h, 'org', ARGV[6], 'chat', ARGV[7]) end
  local s = redis.call('HGET', h, 'start')
  if s == false or t < tonumber(s) then redis.call('HSET', h, 'start', ARGV[2]) end
  if op == 'msg' then
    local role, fresh = ARGV[8], true
    if role ~= 'b' then fresh = redis.call('ZADD', m, 'NX', ARGV[2], role .. ARGV[9]) == 1 end
    if fresh then
      if role == 'c' then
        if later('lc', true) then redis.call('HSET', h, 'facts', ARGV[10]) end
      elseif role == 'a' then later('la', false) end
      if later('lt', true) then redis.call('HSET', h, 'author', role) end
    end
  elseif op == 'end' then redis.call('HSET', h, 'ended', '1')
  elseif op == 'left' then later('left', false)
  end
  -- The platform's attributes are a snapshot of the chat: an older one delivered late does not win.
  local attributes_fresh = nil
  for i = 12, #ARGV, 2 do
    local f, v = ARGV[i], ARGV[i + 1]
    local apply = true
    if string.sub(f, 1, 2) == 'a:' then
      if attributes_fresh == nil then
        local ta = redis.call('HGET', h, 'ta')
        attributes_fresh = ta == false or t >= tonumber(ta)
        if attributes_fresh then redis.call('HSET', h, 'ta', ARGV[2]) end
      end
      apply = attributes_fresh
    end
    if apply then
      if v == '' then redis.call('HDEL', h, f) else redis.call('HSET', h, f, v) end
    end
  end
  redis.call('HINCRBY', h, 'v', 1)
  local ttl = ARGV[3]
  if redis.call('HEXISTS', h, 'ended') == 1 then ttl = ARGV[4] end
  redis.call('EXPIRE', h, ttl)
  redis.call('EXPIRE', m, ttl)
elseif redis.call('EXISTS', h) == 0 then
  return false
end
-- Customer messages after the last agent reply (or the customer leaving) are the ones in a row.
local floor, floor_at = '-inf', -1
for _, f in ipairs({'la', 'left'}) do
  local v = redis.call('HGET', h, f)
  if v and tonumber(v) > floor_at then floor, floor_at = '(' .. v, tonumber(v) end
end
local after = redis.call('ZRANGEBYSCORE', m, floor, '+inf', 'WITHSCORES')
local row, first = 0, ''
for i = 1, #after, 2 do
  if string.sub(after[i], 1, 1) == 'c' then
    row = row + 1
    if first == '' then first = after[i + 1] end
  end
end
local tags = {}
if ARGV[11] == '1' then tags = redis.call('SMEMBERS', KEYS[3]) end
return {redis.call('HGETALL', h), row, first, redis.call('ZCARD', m), tags, redis.call('TTL', h)}
"""

# KEYS: state, schedule. ARGV: version read, the next evaluation's job ('' none), its due time, the fired
# actions' job prefix and due time (their backstop), then trigger/verdict pairs (fire|reopen). Returns
# the fired triggers with their window numbers; nil if the state moved on since it was read.
_DECIDE = """
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return false end
local job = ARGV[2]
local fired = {}
for i = 6, #ARGV, 2 do
  local name = ARGV[i]
  if ARGV[i + 1] == 'fire' then
    redis.call('HSET', KEYS[1], 's:' .. name, '1')
    local n = redis.call('HINCRBY', KEYS[1], 'n:' .. name, 1)
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4] .. name .. '|' .. n)
    fired[#fired + 1] = name
    fired[#fired + 1] = n
  else
    redis.call('HDEL', KEYS[1], 's:' .. name)
  end
end
local old = redis.call('HGET', KEYS[1], 'job')
if old ~= job then
  if old then redis.call('ZREM', KEYS[2], old) end
  if job == '' then
    redis.call('HDEL', KEYS[1], 'job')
  else
    redis.call('ZADD', KEYS[2], ARGV[3], job)
    redis.call('HSET', KEYS[1], 'job', job)
  end
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return fired
"""

ROLES = {"customer": "c", "agent": "a", "bot": "b"}
_AUTHORS = {"c": "customer", "a": "agent", "b": "bot"}


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changes: ``op`` is msg, end, left or seen (times, email, rating, attributes only)."""

    op: str
    time: float
    role: str = ""  # c, a or b, for msg
    digest: str = ""  # the message's, for msg
    facts: tuple[str, ...] = ()  # the message tests a customer message passed
    fields: Mapping[str, str] = field(default_factory=dict)  # email, rating, a:<attribute> ('' deletes)


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str
    view: ThreadView
    source: str
    organization: str | None
    chat_id: str
    job: str  # the next evaluation's scheduled job, '' none
    ttl: int  # seconds until the state expires
    spent: frozenset[str]  # triggers whose window is spent
    fired: Mapping[str, int]  # windows fired per trigger


class TriggerState:
    def __init__(self, client: redis.Redis, prefix: str, schedule_key: str, live_ttl: int, ended_ttl: int) -> None:
        self._redis = client
        self._p = prefix
        self._schedule = schedule_key
        self._live_ttl, self._ended_ttl = live_ttl, ended_ttl
        self._observe = client.register_script(_OBSERVE)
        self._decide = client.register_script(_DECIDE)

    def key(self, thread_id: str) -> str:
        return f"{self._p}trigger:{thread_id}"

    def observe(self, thread_id: str, change: Change | None, *, source: str, organization: str | None, chat_id: str,
                tags_key: str, read_tags: bool) -> Snapshot | None:
        """Apply ``change`` (None: only read) and return the state after it (None: nothing is kept)."""
        key = self.key(thread_id)
        pairs = [x for kv in (change.fields.items() if change else ()) for x in kv]
        reply = self._observe(keys=[key, f"{key}:messages", tags_key], args=[
            change.op if change else "read", f"{change.time:.6f}" if change else "0", self._live_ttl, self._ended_ttl,
            source, organization or "", chat_id, change.role if change else "", change.digest if change else "",
            " ".join(change.facts) if change else "", "1" if read_tags else "0", *pairs])
        return None if reply is None else _snapshot(*reply)

    def decide(self, thread_id: str, version: str, verdicts: Mapping[str, str], job: str, due: float | None,
               fire_prefix: str, fire_due: float) -> list[tuple[str, int]] | None:
        """Apply the verdicts and the next evaluation if the state is still ``version``; None when it moved on.

        Each window fired gets a job ``fire_prefix + name|window`` due at ``fire_due``: its actions' backstop,
        run if the worker is lost before they are done (or handed to retries).
        """
        args: list[Any] = [version, job, f"{due:.6f}" if due is not None else "", fire_prefix, f"{fire_due:.6f}"]
        args += [x for kv in verdicts.items() for x in kv]
        reply = self._decide(keys=[self.key(thread_id), self._schedule], args=args)
        if reply is None:
            return None
        return [(reply[i].decode(), int(reply[i + 1])) for i in range(0, len(reply), 2)]


def _snapshot(pairs: Sequence[bytes], row: int, first: bytes, messages: int, tags: Sequence[bytes],
              ttl: int) -> Snapshot:
    h = {pairs[i].decode(): pairs[i + 1].decode() for i in range(0, len(pairs), 2)}

    def time(name: str) -> float | None:
        return float(h[name]) if name in h else None

    prefixed = {p: {k[len(p):]: v for k, v in h.items() if k.startswith(p)} for p in ("s:", "n:", "a:")}
    view = ThreadView(
        status="ended" if "ended" in h else "open",
        started=time("start"), last_customer=time("lc"), last_agent=time("la"),
        waiting_since=float(first) if first else None,
        last_author=_AUTHORS.get(h.get("author", "")),
        message_facts=frozenset(h.get("facts", "").split()), has_customer_message="lc" in h,
        in_a_row=int(row), messages=int(messages), customer_email=h.get("email"),
        tags=frozenset(t.decode() for t in tags), rating=int(h["rating"]) if "rating" in h else None,
        source=h.get("src"), attributes=prefixed["a:"])
    return Snapshot(h.get("v", "0"), view, h.get("src", ""), h.get("org") or None, h.get("chat", ""), h.get("job", ""),
                    int(ttl), frozenset(prefixed["s:"]), {k: int(v) for k, v in prefixed["n:"].items()})
