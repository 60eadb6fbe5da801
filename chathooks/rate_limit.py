"""A token bucket per key in Redis, shared by every worker process, with a back-off a key can be put in."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

# KEYS: bucket, back-off. ARGV: rate per second, burst, now (ms).
# Returns 0 when a token was taken, else the milliseconds to wait before one can be.
_TAKE = """
local backoff = redis.call('PTTL', KEYS[2])
if backoff > 0 then return backoff end
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local ttl = math.ceil(burst / rate * 1000) + 1000
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ttl)
return math.ceil((1 - tokens) * 1000 / rate)
"""


class RateLimiter:
    """``rate`` calls a second per key on average, ``burst`` at once; ``back_off`` stops a key for a while."""

    def __init__(self, client: redis.Redis, prefix: str, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._prefix = prefix
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._take = client.register_script(_TAKE)

    def wait(self, key: str) -> float:
        """Take a token for ``key``: 0 when taken, else the seconds until one can be."""
        waited = self._take(keys=[self._bucket(key), self._backoff(key)],
                            args=[self.rate, self.burst, int(self._clock() * 1000)])
        return int(waited) / 1000

    def back_off(self, key: str, seconds: float) -> None:
        """No token for ``key`` for ``seconds`` (the service said it is over its limit)."""
        self._redis.set(self._backoff(key), "1", px=max(1, int(seconds * 1000)))

    def _bucket(self, key: str) -> str:
        return f"{self._prefix}rate:{key}"

    def _backoff(self, key: str) -> str:
        return f"{self._prefix}rate:{key}:backoff"
