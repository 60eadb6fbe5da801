"""Agent-silence nudges.

A thread's silence window opens at the first customer message after the last agent reply
and closes at the next agent reply or the thread's end. Its deadline (window start +
``nudge.after_seconds``) is a job in the scheduler, so it survives worker restarts. Each
transition is one Lua script, so workers handling one chat's events at once, in any order,
agree; times are the events' own, so reordered deliveries give the same window.
"""

from __future__ import annotations

from chathooks.events import Event, Role, epoch
from workers.handlers.people import send_as_bot
from workers.runtime import Runtime
from workers.scheduler import job

# KEYS: window hash, schedule. ARGV: time (string), after, job prefix, ttl.
_CUSTOMER = """
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
local t = tonumber(ARGV[1])
if t <= tonumber(redis.call('HGET', KEYS[1], 'last_agent') or '-1') then return 0 end
local start = redis.call('HGET', KEYS[1], 'start')
if start and tonumber(start) <= t then return 0 end
if start then redis.call('ZREM', KEYS[2], ARGV[3] .. start) end
redis.call('HSET', KEYS[1], 'start', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], t + tonumber(ARGV[2]), ARGV[3] .. ARGV[1])
return 1
"""

_AGENT = """
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 0 end
local t = tonumber(ARGV[1])
if t > tonumber(redis.call('HGET', KEYS[1], 'last_agent') or '-1') then
  redis.call('HSET', KEYS[1], 'last_agent', ARGV[1])
end
local start = redis.call('HGET', KEYS[1], 'start')
if start and tonumber(start) <= t then
  redis.call('ZREM', KEYS[2], ARGV[3] .. start)
  redis.call('HDEL', KEYS[1], 'start')
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

_END = """
local start = redis.call('HGET', KEYS[1], 'start')
if start then redis.call('ZREM', KEYS[2], ARGV[3] .. start) end
redis.call('HSET', KEYS[1], 'ended', '1')
redis.call('HDEL', KEYS[1], 'start')
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


def thread_ended(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.thread_id:
        _run(rt, _END, event, 0.0, ttl=rt.settings.ended_chat_ttl_seconds)


def fire(rt: Runtime, chat_id: str, thread_id: str, start: str) -> None:
    """The deadline of the window opened at ``start`` has come: nudge once if it is still open."""
    nudge = rt.rules.nudge
    window = rt.redis.hgetall(_window_key(rt, thread_id))
    if nudge is None or b"ended" in window or window.get(b"start") != start.encode():
        return
    send_as_bot(rt, chat_id, f"nudge:{thread_id}:{start}", nudge.message)


def job_prefix(chat_id: str, thread_id: str) -> str:
    return job("nudge", chat_id, thread_id, "")


def _window_key(rt: Runtime, thread_id: str) -> str:
    return f"{rt.settings.key_prefix}silence:{thread_id}"


def _run(rt: Runtime, script: str, event: Event, at: float, ttl: int | None = None) -> None:
    after = rt.rules.nudge.after_seconds if rt.rules.nudge else 0
    rt.redis.register_script(script)(
        keys=[_window_key(rt, event.thread_id), rt.scheduler.key],  # type: ignore[arg-type]
        args=[f"{at:.6f}", after, job_prefix(event.chat_id, event.thread_id),  # type: ignore[arg-type]
              ttl or rt.settings.chat_ttl_seconds],
    )
