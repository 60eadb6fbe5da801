"""The retry policy and how failures are classified and described."""

from __future__ import annotations

import random

import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from chathooks.http import OutboundError
from workers.once import Busy
from workers.retry import RetryPolicy, describe, is_transient, retry_after


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


LOW, HIGH = FixedRandom(0.0), FixedRandom(1.0)


def error(type_: str = "internal", transient: bool = True, retry_after: float | None = None) -> OutboundError:
    return OutboundError("livechat", "tag_thread", type_, "injected", status=500, transient=transient,
                         retry_after=retry_after)


@pytest.mark.parametrize(("attempt", "ceiling"), [(2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 64), (8, 128)])
def test_backoff_doubles_from_base(attempt, ceiling):
    policy = RetryPolicy()
    assert policy.delay(attempt, rng=HIGH) == ceiling
    assert policy.delay(attempt, rng=LOW) == ceiling / 2


@pytest.mark.parametrize("attempt", [10, 11, 30])
def test_backoff_is_capped(attempt):
    policy = RetryPolicy()
    assert policy.delay(attempt, rng=HIGH) == policy.cap
    assert policy.delay(attempt, rng=LOW) == policy.cap / 2


def test_custom_base_and_cap():
    policy = RetryPolicy(base=1.0, cap=5.0)
    assert [policy.delay(n, rng=HIGH) for n in range(2, 7)] == [1, 2, 4, 5, 5]


@pytest.mark.parametrize("attempt", [2, 5, 9, 12])
def test_jitter_stays_between_half_and_all_of_the_backoff(attempt):
    policy, rng = RetryPolicy(), random.Random(1234)
    ceiling = min(policy.cap, policy.base * 2 ** (attempt - 2))
    delays = [policy.delay(attempt, rng=rng) for _ in range(500)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 400  # actually jittered


def test_retry_after_longer_than_the_backoff_is_honoured():
    assert RetryPolicy().delay(2, retry_after=120, rng=HIGH) == 120


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    assert RetryPolicy().delay(6, retry_after=1, rng=LOW) == 16


def test_retry_after_is_capped():
    policy = RetryPolicy()
    assert policy.delay(2, retry_after=86_400, rng=HIGH) == policy.retry_after_cap
    assert RetryPolicy(retry_after_cap=600).delay(2, retry_after=86_400) == 600


def test_default_policy_makes_eight_attempts():
    assert RetryPolicy().max_attempts == 8


@pytest.mark.parametrize(("exc", "transient"), [
    (error("internal", transient=True), True),
    (error("too_many_requests", transient=True), True),
    (error("validation", transient=False), False),
    (error("chat_inactive", transient=False), False),
    (Busy("tag:T:x"), True),
    (redis.ConnectionError("down"), True),
    (redis.TimeoutError("slow"), True),
    (SoftTimeLimitExceeded(), True),
    (ValueError("a bug"), False),
    (KeyError("a bug"), False),
])
def test_what_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_retry_after_comes_from_outbound_errors_only():
    assert retry_after(error(retry_after=30)) == 30
    assert retry_after(error()) is None
    assert retry_after(Busy("x")) is None


def test_describe_an_outbound_error():
    info = describe(error("too_many_requests", retry_after=30))
    assert info["service"] == "livechat" and info["method"] == "tag_thread"
    assert info["type"] == "too_many_requests" and info["retry_after"] == 30
    assert info["transient"] is True
    assert isinstance(info["at"], float)


def test_describe_any_other_exception_truncated():
    info = describe(ValueError("x" * 2000))
    assert info["type"] == "ValueError"
    assert len(info["message"]) == 500
    assert info["transient"] is False
