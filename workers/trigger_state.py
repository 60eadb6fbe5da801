"""What triggers keep of each thread in Redis, and the one decision per evaluation.

Per thread: a hash (the clocks as the events' own times, the last author, the last customer
message's test results, email, rating, the platform attributes the triggers read, the message
count, and per trigger the version its window was spent at and how many windows fired, and the
next evaluation's job); a sorted set of its messages (a short digest each, by time) that
dedupes redeliveries and gives the customers' messages in a row; and, rarely, the customer
messages in the same second as the last agent reply but after it. No message text is kept.

Every change is one script that also returns the state, so an event costs one round trip.
A decision (fire, reopen, the next evaluation's moment) is applied only if the state is
unchanged since it was read (a version compare-and-set), so workers evaluating one thread
at once never fire a window twice or on stale state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from chathooks.events import Role
from chathooks.redis_client import PackedScript, PipelinedScript
from chathooks.triggers.conditions import ThreadView

# KEYS: state, messages, applied tags, ties, the chat's roles. ARGV: op (msg|start|end|left|seen|read), time, live
# ttl, ended ttl, source, organization, chat id, role (c|a|b; ? the author's as the chat's roles have it), message
# digest, test results, read tags (1|0), the author's id, then field/value pairs to set ('' deletes; a:<name> the
# platform's attributes). A role the chat's roles do not have returns -1, nothing changed (the caller asks the
# platform, and tells the role). Only msg, start and end create a thread's
# state: a late rating or tag after the state expired does not bring back an empty, open one. Times travel as the
# caller's strings so no precision is lost in Lua.
_OBSERVE = """
local h, m, ties = KEYS[1], KEYS[2], KEYS[4]
local op, t = ARGV[1], tonumber(ARGV[2])
-- The hash is read once and written once: its fields are worked on in s, the changes kept in changed.
local flat = redis.call('HGETALL', h)
if #flat == 0 and op ~= 'msg' and op ~= 'start' and op ~= 'end' then return false end
local role = ARGV[8]
if role == '?' then
  role = ({customer = 'c', agent = 'a', bot = 'b'})[redis.call('HGET', KEYS[5], ARGV[12])]
  if role == nil then return -1 end
end
local s, changed = {}, {}
for i = 1, #flat, 2 do s[flat[i]] = flat[i + 1] end
local function put(f, v)  -- v false: delete f
  if v then s[f] = v else s[f] = nil end
  changed[f] = v
end
local function add(f) put(f, tostring((tonumber(s[f]) or 0) + 1)) end
-- Keep the later time in field f; on a tie (LHC's clock has whole seconds) the message that arrived last wins.
local function later(f, ties_win)
  local v = s[f]
  if v == nil or t > tonumber(v) or (ties_win and t == tonumber(v)) then
    put(f, ARGV[2])
    return true
  end
  return false
end
local ttl
if op ~= 'read' then
  if s['src'] == nil then put('src', ARGV[5]); put('org', ARGV[6]); put('chat', ARGV[7]) end
  -- Bot messages are kept only to recognise their redeliveries: they count for nothing but the last author.
  local fresh = op ~= 'msg' or redis.call('ZADD', m, 'NX', ARGV[2], role .. ARGV[9]) == 1
  if fresh and role ~= 'b' and (s['start'] == nil or t < tonumber(s['start'])) then put('start', ARGV[2]) end
  if op == 'msg' and fresh then
    if role == 'c' then
      add('n')
      if later('lc', true) then put('facts', ARGV[10]) end
      -- In the second of the last agent reply, but after it: still waiting.
      if s['la'] == ARGV[2] then redis.call('SADD', ties, ARGV[9]) end
    elseif role == 'a' then
      add('n')
      if later('la', true) then redis.call('DEL', ties) end
    end
    if later('lt', true) then put('author', role) end
  elseif op == 'end' then put('ended', '1')
  elseif op == 'left' then later('left', false)
  end
  -- A value set by an event is not overwritten by an older event delivered late: the platform's attributes
  -- (a snapshot of the chat) as one, the email and the rating each by its own time.
  local fresh_by = {}
  for i = 13, #ARGV, 2 do
    local f, v = ARGV[i], ARGV[i + 1]
    local group = f
    if string.sub(f, 1, 2) == 'a:' then group = 'a' end
    if fresh_by[group] == nil then
      local at = s['t:' .. group]
      fresh_by[group] = at == nil or t >= tonumber(at)
      if fresh_by[group] then put('t:' .. group, ARGV[2]) end
    end
    if fresh_by[group] then put(f, v ~= '' and v) end
  end
  add('v')
  local sets, dels = {}, {}
  for f, v in pairs(changed) do
    if v then sets[#sets + 1] = f; sets[#sets + 1] = v else dels[#dels + 1] = f end
  end
  redis.call('HSET', h, unpack(sets))
  if #dels > 0 then redis.call('HDEL', h, unpack(dels)) end
  ttl = ARGV[3]
  if s['ended'] then ttl = ARGV[4] end
  for _, key in ipairs({h, m, ties}) do redis.call('EXPIRE', key, ttl) end
  ttl = tonumber(ttl)
else
  ttl = redis.call('TTL', h)
end
-- Customer messages after the last agent reply (or the customer leaving) are the ones in a row: those
-- with a later time, and those in the reply's own second that arrived after it.
local la, left = s['la'], s['left']
local floor, row, first = '-inf', 0, ''
if la and (not left or tonumber(la) >= tonumber(left)) then
  floor = '(' .. la
  row = redis.call('SCARD', ties)
  if row > 0 then first = la end
elseif left then
  floor = '(' .. left
end
local after = redis.call('ZRANGEBYSCORE', m, floor, '+inf', 'WITHSCORES')
for i = 1, #after, 2 do
  if string.sub(after[i], 1, 1) == 'c' then
    row = row + 1
    if first == '' then first = after[i + 1] end
  end
end
local tags = {}
if ARGV[11] == '1' then tags = redis.call('SMEMBERS', KEYS[3]) end
-- The state as one JSON object (every value a string): one reply for the client to parse, not one per field.
return {cjson.encode(s), row, first, tags, ttl, role}
"""

# KEYS: state, schedule. ARGV: version read, the next evaluation's job ('' none), its due time, the fired
# actions' job prefix and due time (their backstop), then trigger/verdict pairs (fire|reopen). A window is
# spent at a version; the state read at or after it found the condition false, so a reopen read from it
# stands even when the state has moved on since (a concurrent event must not hide that it was false).
# Fires and the schedule need the state unchanged. Returns the fired triggers with their window numbers;
# nil if the state moved on since it was read.
_DECIDE = PipelinedScript("""
local read = tonumber(ARGV[1])
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == 'reopen' then
    local spent = redis.call('HGET', KEYS[1], 's:' .. ARGV[i])
    if spent and read >= tonumber(spent) then redis.call('HDEL', KEYS[1], 's:' .. ARGV[i]) end
  end
end
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return false end
local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
local fired = {}
for i = 6, #ARGV, 2 do
  local name = ARGV[i]
  if ARGV[i + 1] == 'fire' then
    redis.call('HSET', KEYS[1], 's:' .. name, version)
    local n = redis.call('HINCRBY', KEYS[1], 'n:' .. name, 1)
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4] .. name .. '|' .. n)
    fired[#fired + 1] = name
    fired[#fired + 1] = n
  end
end
local old, job = redis.call('HGET', KEYS[1], 'job'), ARGV[2]
if old and old ~= job then redis.call('ZREM', KEYS[2], old) end
if job == '' then
  redis.call('HDEL', KEYS[1], 'job')
else
  redis.call('ZADD', KEYS[2], ARGV[3], job)
  redis.call('HSET', KEYS[1], 'job', job)
end
return fired
""")

ROLES = {"customer": "c", "agent": "a", "bot": "b"}
LOOK_UP = "?"  # a message's role: the author's as the chat's roles have it (read with the state, one round trip)
_AUTHORS = {"c": "customer", "a": "agent", "b": "bot"}
_ROLE_OF = {code.encode(): Role(name) for code, name in _AUTHORS.items()}
_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changes: ``op`` is msg, start, end, left or seen (times, email, rating, attributes only)."""

    op: str
    time: float
    role: str = ""  # c, a, b or LOOK_UP, for msg
    digest: str = ""  # the message's, for msg
    facts: tuple[str, ...] = ()  # the message tests a customer message passed
    fields: Mapping[str, str] = field(default_factory=dict)  # email, rating, a:<attribute> ('' deletes)
    author: str = ""  # the author's id, for LOOK_UP


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
    role: Role | None  # the change's author's, as looked up (LOOK_UP)


class RoleUnknown(Exception):
    """A message's author is not in the chat's roles: only the platform can tell (nothing was changed)."""


class TriggerState:
    def __init__(self, client: redis.Redis, prefix: str, schedule_key: str, live_ttl: int, ended_ttl: int) -> None:
        self._redis = client
        self._p = prefix
        self._schedule = schedule_key
        self._live_ttl, self._ended_ttl = live_ttl, ended_ttl
        # Run on every event of a thread with triggers: packed by hand (see PackedScript).
        self._observe = PackedScript(client, _OBSERVE)
        self._decide = PackedScript(client, _DECIDE.script)

    def key(self, thread_id: str) -> str:
        return f"{self._p}trigger:{thread_id}"

    def observe(self, thread_id: str, change: Change | None, *, source: str, organization: str | None, chat_id: str,
                tags_key: str, read_tags: bool, roles_key: str = "") -> Snapshot | None:
        """Apply ``change`` (None: only read) and return the state after it (None: nothing is kept).

        A change whose role is LOOK_UP has its author's role read from ``roles_key`` (the chat's roles); RoleUnknown
        when it is not there.
        """
        key = self.key(thread_id)
        pairs = [x for kv in (change.fields.items() if change else ()) for x in kv]
        reply, _ = self._observe([key, f"{key}:messages", tags_key, f"{key}:ties", roles_key], [
            change.op if change else "read", f"{change.time:.6f}" if change else "0", self._live_ttl, self._ended_ttl,
            source, organization or "", chat_id, change.role if change else "", change.digest if change else "",
            " ".join(change.facts) if change else "", "1" if read_tags else "0", change.author if change else "",
            *pairs])
        if reply == -1:
            raise RoleUnknown(f"{change.author if change else ''} in chat {chat_id}")
        return None if reply is None else _snapshot(*reply)

    def decide(self, thread_id: str, version: str, verdicts: Mapping[str, str], job: str, due: float | None,
               fire_prefix: str, fire_due: float) -> list[tuple[str, int]] | None:
        """Apply the verdicts and the next evaluation if the state is still ``version``; None when it moved on.

        Each window fired gets a job ``fire_prefix + name|window`` due at ``fire_due``: its actions' backstop,
        run if the worker is lost before they are done (or handed to retries).
        """
        args = _decide_args(version, job, due, fire_prefix, f"{fire_due:.6f}", verdicts)
        reply, _ = self._decide([self.key(thread_id), self._schedule], args)
        if reply is None:
            return None
        return [(reply[i].decode(), int(reply[i + 1])) for i in range(0, len(reply), 2)]

    def schedule(self, thread_id: str, version: str, job: str, due: float | None, pipe: redis.client.Pipeline) -> None:
        """``decide`` with no verdicts, on ``pipe`` (its answer unread): the next evaluation, if the state is still
        ``version``."""
        _DECIDE.queue(pipe, (self.key(thread_id), self._schedule), _decide_args(version, job, due, "", "0", {}))


def _decide_args(version: str, job: str, due: float | None, fire_prefix: str, fire_due: str,
                 verdicts: Mapping[str, str]) -> list[Any]:
    return [version, job, f"{due:.6f}" if due is not None else "", fire_prefix, fire_due,
            *(x for kv in verdicts.items() for x in kv)]


def _snapshot(state: bytes, row: int, first: bytes, tags: Sequence[bytes], ttl: int, role: bytes) -> Snapshot:
    h: dict[str, str] = orjson.loads(state)
    spent, fired, attributes = [], {}, {}
    for k, v in h.items():
        if k[1:2] == ":":
            kind = k[0]
            if kind == "s":
                spent.append(k[2:])
            elif kind == "n":
                fired[k[2:]] = int(v)
            elif kind == "a":
                attributes[k[2:]] = v
    get = h.get
    start, lc, la, facts, rating = get("start"), get("lc"), get("la"), get("facts"), get("rating")
    view = ThreadView(
        status="ended" if "ended" in h else "open",
        started=float(start) if start else None, last_customer=float(lc) if lc else None,
        last_agent=float(la) if la else None, waiting_since=float(first) if first else None,
        last_author=_AUTHORS.get(get("author", "")),
        message_facts=frozenset(facts.split()) if facts else _NONE, has_customer_message=lc is not None,
        in_a_row=int(row), messages=int(get("n", 0)), customer_email=get("email"),
        tags=frozenset(t.decode() for t in tags) if tags else _NONE, rating=int(rating) if rating else None,
        source=get("src"), attributes=attributes)
    return Snapshot(get("v", "0"), view, get("src", ""), get("org") or None, get("chat", ""), get("job", ""),
                    int(ttl), frozenset(spent), fired, _ROLE_OF.get(role))
