"""Customer profiles: what the pipeline knows about a customer across chats and platforms, no message text.

Workers write them from the events of every source; the ingress reads them to answer ChatBot.com
webhook blocks. A profile is keyed by the customer's lowercase email, or by the platform's customer
id until an email is seen; when both are seen the customer-id profile is merged into the email one
and left behind as an alias. Every write is idempotent: a chat counts once however often it is
delivered (a marker per chat), first and last seen are a min and a max of the events' own times,
the last rating is the latest by its time. Profiles live ``ttl`` seconds from their last write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from chathooks.keys import Keys
from chathooks.redis_client import PackedScript, PipelinedScript, Write, read

FIELDS = ("known", "chats", "first_seen", "last_seen", "last_rating", "tags", "subscribed", "name")

# Merge a customer-id profile (KEYS[2]) into the email profile (KEYS[1]) and leave an alias behind.
_MERGE = """
local function merge(target, source)
  local fields = redis.call('HGETALL', source)
  if #fields == 0 or redis.call('HEXISTS', source, 'alias') == 1 then return end
  local values = {}
  for i = 1, #fields, 2 do values[fields[i]] = fields[i + 1] end
  for f, v in pairs(values) do
    if string.sub(f, 1, 5) == 'chat:' then
      if redis.call('HSETNX', target, f, v) == 1 then redis.call('HINCRBY', target, 'chats', 1) end
    elseif string.sub(f, 1, 4) == 'tag:' then
      redis.call('HSET', target, f, v)
    elseif f == 'first_seen' then
      local t = redis.call('HGET', target, f)
      if not t or tonumber(v) < tonumber(t) then redis.call('HSET', target, f, v) end
    elseif f == 'last_seen' then
      local t = redis.call('HGET', target, f)
      if not t or tonumber(v) > tonumber(t) then redis.call('HSET', target, f, v) end
    elseif f == 'last_rating_at' then
      local t = redis.call('HGET', target, f)
      if not t or tonumber(v) > tonumber(t) then
        redis.call('HSET', target, f, v, 'last_rating', values['last_rating'] or '')
      end
    elseif f == 'name' then
      redis.call('HSETNX', target, f, v)
    elseif f == 'subscribed' then
      redis.call('HSET', target, f, v)
    end
  end
end
"""

# The profile of the chat whose link is at ``link``, following an alias; nil when the chat has none. The profile's
# key is known only from the link, so it is made here from the key prefixes (one Redis, never a cluster). A
# look-up and a write in one script: a merge cannot move the profile in between.
_LINKED = """
local function linked(link, email_prefix, customer_prefix)
  local ref = redis.call('GET', link)
  if not ref then return nil end
  local kind, value = string.match(ref, '^(%a+):(.*)$')
  if not kind then return nil end
  if kind == 'email' then return email_prefix .. value end
  local key = customer_prefix .. value
  local alias = redis.call('HGET', key, 'alias')
  if alias then return email_prefix .. alias end
  return key
end
"""

# KEYS: the profile, the chat's link to it, and (when linking) the customer-id profile.
# ARGV: chat marker ('' for none), time, name ('' for none), profile TTL, chat TTL, the profile's ref,
# the email to alias the customer id to ('' for none), '1' when the profile is a customer id's.
# Returns -1, changing nothing, when that customer id has become an alias since the caller looked.
_SEEN_BODY = """
if ARGV[8] == '1' and redis.call('HEXISTS', profile, 'alias') == 1 then return -1 end
if ARGV[7] ~= '' then
  merge(profile, KEYS[3])
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[3], 'alias', ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if ARGV[1] ~= '' and redis.call('HSETNX', profile, ARGV[1], '1') == 1 then
  redis.call('HINCRBY', profile, 'chats', 1)
end
local t = tonumber(ARGV[2])
local first = redis.call('HGET', profile, 'first_seen')
if not first or t < tonumber(first) then redis.call('HSET', profile, 'first_seen', ARGV[2]) end
local last = redis.call('HGET', profile, 'last_seen')
if not last or t > tonumber(last) then redis.call('HSET', profile, 'last_seen', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', profile, 'name', ARGV[3]) end
redis.call('EXPIRE', profile, ARGV[4])
if ARGV[1] ~= '' then redis.call('SET', KEYS[2], ARGV[6], 'EX', ARGV[5]) end
return 1
"""
_SEEN = _MERGE + "local profile = KEYS[1]" + _SEEN_BODY
# KEYS: the chat's link. ARGV: as _SEEN's with no marker, ref or link; then the email and customer key prefixes.
_SEEN_LINKED = _MERGE + _LINKED + """
local profile = linked(KEYS[1], ARGV[9], ARGV[10])
if not profile then return 1 end
""" + _SEEN_BODY

# KEYS: the chat's link. ARGV: the email and customer key prefixes, profile TTL, rating, its time. The latest
# rating wins, whatever the order.
_RATED = _LINKED + """
local profile = linked(KEYS[1], ARGV[1], ARGV[2])
if not profile then return 0 end
local t = redis.call('HGET', profile, 'last_rating_at')
if not t or tonumber(ARGV[5]) >= tonumber(t) then
  redis.call('HSET', profile, 'last_rating', ARGV[4], 'last_rating_at', ARGV[5])
end
redis.call('EXPIRE', profile, ARGV[3])
return 1
"""

# KEYS: the chat's link. ARGV: the email and customer key prefixes, profile TTL, then the tags.
_TAGGED = _LINKED + """
local profile = linked(KEYS[1], ARGV[1], ARGV[2])
if not profile then return 0 end
for i = 4, #ARGV do redis.call('HSET', profile, 'tag:' .. ARGV[i], '1') end
redis.call('EXPIRE', profile, ARGV[3])
return 1
"""
_TAGGED_LATER = PipelinedScript(_TAGGED)


@dataclass(frozen=True, slots=True)
class Profile:
    known: bool = False
    chats: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    last_rating: str = ""  # "good", "bad" or empty
    tags: tuple[str, ...] = ()
    subscribed: bool = False
    name: str = ""

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes]) -> Profile:
        values = {k.decode(): v.decode() for k, v in raw.items()}
        chats = int(values.get("chats", 0))
        return cls(
            known=chats > 0,
            chats=chats,
            first_seen=float(values["first_seen"]) if "first_seen" in values else None,
            last_seen=float(values["last_seen"]) if "last_seen" in values else None,
            last_rating=values.get("last_rating", ""),
            tags=tuple(sorted(k[4:] for k in values if k.startswith("tag:"))),
            subscribed=values.get("subscribed") == "1",
            name=values.get("name", ""),
        )

    def as_text(self) -> dict[str, str]:
        """Every field as templates render it: booleans true/false, counts in decimal, times in ISO 8601 UTC."""
        return {
            "known": _bool(self.known), "chats": str(self.chats), "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen), "last_rating": self.last_rating, "tags": ", ".join(self.tags),
            "subscribed": _bool(self.subscribed), "name": self.name,
        }


UNKNOWN = Profile()


class Profiles:
    def __init__(self, client: redis.Redis, keys: Keys, ttl: int, chat_ttl: int, *,
                 later: Callable[[Write], None] | None = None,
                 lasting: Callable[[Write], None] | None = None) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl
        self._chat_ttl = chat_ttl
        # ``later``: a write that needs no answer and no look-up (subscribed) goes with the caller's other writes
        # (a worker's task's flush; a task cut short before it runs again, and writes it again). A rating is written
        # at once, in the script that looks its profile up.
        self._later = later
        # ``lasting``: a tag goes with the caller's other writes too, in the script that looks its profile up, run
        # when they are written (a profile merged meanwhile gets it through its alias), and kept until written if
        # a write fails. A profile's tags are never taken back, and nothing in a task reads them.
        self._lasting = lasting
        self._seen = PackedScript(client, _SEEN)
        self._seen_linked = PackedScript(client, _SEEN_LINKED)
        self._rated = PackedScript(client, _RATED)
        self._tagged = PackedScript(client, _TAGGED)
        self._prefixes = (keys.profile_email(""), keys.profile_customer(""))

    # --- reads (the ingress) ------------------------------------------------------------

    def find(self, email: str | None, customer_id: str | None) -> Profile:
        """The customer's profile by email, else by customer id; ``UNKNOWN`` when there is none."""
        reads = self.reads(email, customer_id)
        return self.found(reads, read(self._redis, reads))

    def reads(self, email: str | None, customer_id: str | None) -> list[tuple[str, str]]:
        """The commands that read the profile (``found`` makes it of their replies): for a caller that sends
        them with other commands of its own."""
        return [("HGETALL", key) for key in (self._email(email), self._customer(customer_id)) if key]

    def found(self, reads: Sequence[tuple[str, str]], replies: Sequence[Any]) -> Profile:
        """The profile of the ``reads``' replies (as the server sent them; an error reply is raised); a merged
        profile is read through its alias."""
        hashes: dict[str, dict[bytes, bytes]] = {}
        for (_, key), reply in zip(reads, replies, strict=True):
            if isinstance(reply, redis.ResponseError):
                raise reply
            # RESP2 sends a hash as a flat list of fields and values, RESP3 as a map.
            hashes[key] = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))
        for key, raw in list(hashes.items()):
            if raw and b"alias" in raw:
                alias = self._keys.profile_email(raw[b"alias"].decode())
                hashes[key] = hashes[alias] if alias in hashes else self._redis.hgetall(alias)
        # Not linked yet (no chat has shown both): both halves are this customer's.
        raws = [raw for raw in {id(r): r for r in hashes.values() if r}.values()]
        return Profile.from_hash(_merged(raws)) if raws else UNKNOWN

    # --- writes (the workers) -----------------------------------------------------------

    def seen(self, source: str, chat_id: str, *, email: str | None = None, customer_id: str | None = None,
             name: str | None = None, at: float | None = None) -> None:
        """The customer was in chat ``chat_id``: count the chat once, move first/last seen, link email and id."""
        email_key, customer_key = self._email(email), self._customer(customer_id)
        moment = f"{at if at is not None else time.time():.6f}"
        for _ in range(3):  # a customer id linked to an email meanwhile is looked up again
            link, by_id = "", False
            if email_key:
                target, ref = email_key, f"email:{_email(email)}"
                link = _email(email) if customer_key else ""
            elif customer_key:
                alias = self._redis.hget(customer_key, "alias")
                target = self._keys.profile_email(alias.decode()) if alias else customer_key
                ref = f"email:{alias.decode()}" if alias else f"customer:{customer_id}"
                by_id = alias is None
            else:  # no identity in this event: the chat's customer, if known
                self._seen_linked([self._keys.profile_chat(source, chat_id)],
                                  ["", moment, name or "", self._ttl, self._chat_ttl, "", "", "", *self._prefixes])
                return
            marker = f"chat:{source}:{chat_id}" if ref else ""
            done, _ = self._seen([target, self._keys.profile_chat(source, chat_id), customer_key or target],
                                 [marker, moment, name or "", self._ttl, self._chat_ttl, ref, link,
                                  "1" if by_id else ""])
            if done != -1:
                return

    def rated(self, source: str, chat_id: str, rating: str, at: float) -> None:
        """The chat's customer rated it (nothing when the chat has no profile linked)."""
        self._rated([self._keys.profile_chat(source, chat_id)], [*self._prefixes, self._ttl, rating, f"{at:.6f}"])

    def tagged(self, source: str, chat_id: str, tags: Iterable[str]) -> None:
        """The chat was tagged: so is its customer's profile (nothing when the chat has none linked)."""
        if not (tags := list(tags)):
            return
        keys, args = (self._keys.profile_chat(source, chat_id),), (*self._prefixes, self._ttl, *tags)
        if self._lasting is None:
            self._tagged(keys, args)
        else:
            self._lasting(lambda pipe: _TAGGED_LATER.queue(pipe, keys, args))

    def subscribed(self, email: str) -> None:
        self._write(self._keys.profile_email(_email(email)), {"subscribed": "1"}, later=self._later)

    def _write(self, key: str, values: dict[str, str], later: Callable[[Write], None] | None = None) -> None:
        def write(pipe: redis.client.Pipeline) -> None:
            pipe.hset(key, mapping=values)
            pipe.expire(key, self._ttl)

        if later is not None:
            later(write)
            return
        with self._redis.pipeline(transaction=False) as pipe:
            write(pipe)
            pipe.execute()

    # --- keys ---------------------------------------------------------------------------

    def _email(self, email: str | None) -> str | None:
        return self._keys.profile_email(_email(email)) if email and email.strip() else None

    def _customer(self, customer_id: str | None) -> str | None:
        return self._keys.profile_customer(customer_id) if customer_id else None


def _merged(raws: list[Mapping[bytes, bytes]]) -> dict[bytes, bytes]:
    """Two profiles of one customer read as one, as the link would merge them (``_MERGE``)."""
    if len(raws) == 1:
        return dict(raws[0])
    merged: dict[bytes, bytes] = {}
    for raw in raws:
        for field, value in raw.items():
            if field.startswith((b"chat:", b"tag:")) or field == b"subscribed" and value == b"1":
                merged[field] = value
            elif field == b"name":
                merged.setdefault(field, value)
    times = [{k: float(v) for k, v in raw.items() if k in (b"first_seen", b"last_seen", b"last_rating_at")}
             for raw in raws]
    for field, pick in ((b"first_seen", min), (b"last_seen", max)):
        if values := [t[field] for t in times if field in t]:
            merged[field] = b"%f" % pick(values)
    rated = [(t[b"last_rating_at"], raw) for t, raw in zip(times, raws) if b"last_rating_at" in t]
    if rated:
        merged[b"last_rating"] = max(rated, key=lambda pair: pair[0])[1].get(b"last_rating", b"")
    merged[b"chats"] = str(sum(1 for field in merged if field.startswith(b"chat:"))).encode()
    return merged


def _email(email: str | None) -> str:
    return (email or "").strip().lower()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _iso(at: float | None) -> str:
    return "" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
