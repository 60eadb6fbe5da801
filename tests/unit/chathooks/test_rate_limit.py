"""RateLimiter on fakeredis (Lua): a burst, a refill by a clock under the test's control, back-off per key."""

from __future__ import annotations

import time

import pytest

from chathooks.rate_limit import RateLimiter
from tests.helpers import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(fake_redis, settings, clock) -> RateLimiter:
    return RateLimiter(fake_redis, settings.key_prefix, rate=2, burst=3, clock=clock)


def test_a_burst_then_a_wait(limiter):
    assert [limiter.wait("org-a") for _ in range(3)] == [0, 0, 0]
    assert limiter.wait("org-a") == 0.5
    assert limiter.wait("org-a") == 0.5  # asking again takes nothing


def test_tokens_refill_at_the_rate(limiter, clock):
    for _ in range(3):
        limiter.wait("org-a")
    clock.now += 0.25
    assert limiter.wait("org-a") == 0.25
    clock.now += 0.25
    assert limiter.wait("org-a") == 0
    assert limiter.wait("org-a") == 0.5


def test_the_bucket_never_holds_more_than_the_burst(limiter, clock):
    limiter.wait("org-a")
    clock.now += 3600
    assert [limiter.wait("org-a") for _ in range(4)] == [0, 0, 0, 0.5]


def test_keys_have_their_own_buckets(limiter):
    for _ in range(3):
        limiter.wait("org-a")
    assert limiter.wait("org-a") > 0
    assert limiter.wait("org-b") == 0


def test_the_default_burst_is_one_second_of_rate(fake_redis, settings, clock):
    assert RateLimiter(fake_redis, settings.key_prefix, rate=5).burst == 5
    slow = RateLimiter(fake_redis, settings.key_prefix, rate=0.5, clock=clock)
    assert slow.burst == 1
    assert [slow.wait("org-a"), slow.wait("org-a")] == [0, 2.0]


def test_a_clock_going_back_refills_nothing(limiter, clock):
    for _ in range(3):
        limiter.wait("org-a")
    clock.now -= 10
    assert limiter.wait("org-a") == 0.5


def test_back_off_stops_one_key(limiter):
    limiter.back_off("org-a", 5)
    assert 4.5 < limiter.wait("org-a") <= 5
    assert limiter.wait("org-b") == 0


def test_back_off_ends(limiter):
    limiter.back_off("org-a", 0.05)
    assert limiter.wait("org-a") > 0
    time.sleep(0.06)
    assert limiter.wait("org-a") == 0


def test_a_backed_off_key_keeps_its_tokens(limiter, fake_redis, settings):
    limiter.wait("org-a")
    limiter.back_off("org-a", 5)
    for _ in range(3):
        assert limiter.wait("org-a") > 4
    fake_redis.delete(f"{settings.key_prefix}rate:org-a:backoff")
    assert [limiter.wait("org-a") for _ in range(3)] == [0, 0, 0.5]


def test_keys_are_under_the_prefix_and_expire(limiter, fake_redis, settings):
    limiter.wait("org-a")
    limiter.back_off("org-a", 5)
    keys = sorted(k.decode() for k in fake_redis.keys("*"))
    assert keys == [f"{settings.key_prefix}rate:org-a", f"{settings.key_prefix}rate:org-a:backoff"]
    assert all(fake_redis.pttl(k) > 0 for k in keys)
