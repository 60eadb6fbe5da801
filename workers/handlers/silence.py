"""Agent-silence nudges.

A thread's silence window opens at the first customer message after the last agent reply
and closes at the next agent reply or the thread's end. Its deadline (window start +
``nudge.after_seconds``) is a job in the scheduler, so it survives worker restarts. Each
transition is one Lua script, so workers handling one chat's events at once, in any order,
agree. Times are the events' own, and the customer messages waiting for an answer are kept
(as times only), so reordered deliveries give the same window as ordered ones. A window is
nudged at most once.
"""

from __future__ import annotations

from chathooks.events import Event, Kind, Role, epoch
from chathooks.http import OutboundError
from chathooks.platforms.base import ChatRef
from chathooks.platforms.registry import DEFAULT_SOURCE
from workers.handlers.people import send_as_bot
from workers.runtime import Runtime
from workers.scheduler import job

# KEYS: window hash, schedule, customer message times since the last agent reply.
# ARGV: time (string), after, job prefix, ttl, the chat's source and organization (for the nudge).
_RESCHEDULE = """
local function reschedule()
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  local start = redis.call('HGET', KEYS[1], 'start')
  if start == false then start = nil end
  if start ~= first then
    if start then redis.call('ZREM', KEYS[2], ARGV[3] .. start) end
    if first then
      redis.call('HSET', KEYS[1], 'start', first)
      redis.call('ZADD', KEYS[2], tonumber(first) + tonumber(ARGV[2]), ARGV[3] .. first)
    else
      redis.call('HDEL', KEYS[1], 'start')
    end
  end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
  return 1
end
"""

_CUSTOMER = _RESCHEDULE + """
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
local t = tonumber(ARGV[1])
if t <= tonumber(redis.call('HGET', KEYS[1], 'last_agent') or '-1') then return 0 end
redis.call('ZADD', KEYS[3], t, ARGV[1])
redis.call('HSET', KEYS[1], 'source', ARGV[5], 'organization', ARGV[6])
return reschedule()
"""

_AGENT = _RESCHEDULE + """
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
local t = tonumber(ARGV[1])
if t > tonumber(redis.call('HGET', KEYS[1], 'last_agent') or '-1') then
  redis.call('HSET', KEYS[1], 'last_agent', ARGV[1])
end
local start = redis.call('HGET', KEYS[1], 'start')
if start and tonumber(start) <= t then redis.call('HDEL', KEYS[1], 'nudged') end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', t)
return reschedule()
"""

_END = """
local start = redis.call('HGET', KEYS[1], 'start')
if start then redis.call('ZREM', KEYS[2], ARGV[3] .. start) end
redis.call('HSET', KEYS[1], 'ended', '1')
redis.call('HDEL', KEYS[1], 'start')
redis.call('DEL', KEYS[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


def observe(event: Event, rt: Runtime) -> None:
    """A message: a customer's may open the window, an agent's closes it; the bot's count for nothing."""
    if rt.rules.nudge is None or not (event.chat_id and event.thread_id):
        return
    role = rt.author_role(event)
    if role is Role.CUSTOMER:
        _run(rt, _CUSTOMER, event, epoch(event.time) or rt.clock())
    elif role is Role.AGENT:
        _run(rt, _AGENT, event, epoch(event.time) or rt.clock())


def customer_left(event: Event, rt: Runtime) -> None:
    """The customer closed the chat: nobody is waiting since then, as if answered. A later message reopens."""
    if rt.rules.nudge is not None and event.chat_id and event.thread_id:
        _run(rt, _AGENT, event, epoch(event.time) or rt.clock())


def thread_ended(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.thread_id:
        _run(rt, _END, event, 0.0, ttl=rt.settings.ended_chat_ttl_seconds)


def deadline(chat_id: str, thread_id: str, start: str) -> Event:
    """The internal event a due nudge job becomes, so it runs with the handlers' retries."""
    return Event(key=f"chathooks:{thread_id}:nudge:{start}", source="chathooks", kind=Kind.SILENCE_DEADLINE,
                 chat_id=chat_id, thread_id=thread_id, raw={"window_start": start})


def fire(event: Event, rt: Runtime) -> None:
    """A window's deadline has come: nudge once if it is still open and has not been nudged."""
    nudge, start = rt.rules.nudge, event.raw["window_start"]
    window_key = _window_key(rt, event.thread_id)  # type: ignore[arg-type]
    window = rt.redis.hgetall(window_key)
    if nudge is None or b"ended" in window or b"nudged" in window or window.get(b"start") != start.encode():
        return
    # The platform of the chat: the window keeps it from its first message.
    source = window.get(b"source", DEFAULT_SOURCE.encode()).decode()
    organization = window.get(b"organization", b"").decode() or None
    chat = ChatRef(source, event.chat_id, event.thread_id, organization)  # type: ignore[arg-type]
    try:
        send_as_bot(rt, chat, f"nudge:{event.thread_id}:{start}", nudge.message)
    except OutboundError as exc:
        if exc.type != "chat_inactive":
            raise
        chats = rt.outbound.chats(source)
        chats.skipped("message", chat, "chat inactive", code="chat_inactive", text=nudge.message)
    rt.redis.hset(window_key, "nudged", "1")


def job_prefix(chat_id: str, thread_id: str) -> str:
    return job("nudge", chat_id, thread_id, "")


def _window_key(rt: Runtime, thread_id: str) -> str:
    return f"{rt.settings.key_prefix}silence:{thread_id}"


def _run(rt: Runtime, script: str, event: Event, at: float, ttl: int | None = None) -> None:
    after = rt.rules.nudge.after_seconds if rt.rules.nudge else 0
    thread = event.thread_id
    rt.redis.register_script(script)(
        keys=[_window_key(rt, thread), rt.scheduler.key, f"{_window_key(rt, thread)}:waiting"],  # type: ignore[arg-type]
        args=[f"{at:.6f}", after, job_prefix(event.chat_id, event.thread_id),  # type: ignore[arg-type]
              ttl or rt.settings.chat_ttl_seconds, event.source, event.organization or ""],
    )
