"""Once: at-most-once side effects on an at-least-once queue."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from workers.once import DONE, Busy, Once
from workers.retry import is_transient


@pytest.fixture
def once(settings, fake_redis) -> Once:
    return Once(fake_redis, settings.key_prefix, lease_seconds=60, done_ttl=3600)


class Effect:
    def __init__(self, result: object = "result", error: BaseException | None = None) -> None:
        self.calls = 0
        self.result, self.error = result, error

    def __call__(self) -> object:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.result


def test_runs_the_effect_and_returns_its_result(once):
    effect = Effect("sent")
    assert once.run("tag:T1:refund", effect) == (True, "sent")
    assert effect.calls == 1 and once.done("tag:T1:refund")
    assert once.done("tag:T1:refund")


def test_a_rerun_after_done_skips_the_effect(once):
    effect = Effect()
    once.run("x", effect)
    assert once.run("x", effect) == (False, None)
    assert once.run("x", effect) == (False, None)
    assert effect.calls == 1


def test_different_names_are_independent(once):
    effect = Effect()
    once.run("tag:T1:refund", effect)
    once.run("tag:T1:order-status", effect)
    assert effect.calls == 2


def test_done_is_kept_for_done_ttl_and_a_per_call_ttl_overrides_it(once, fake_redis):
    once.run("a", Effect())
    once.run("b", Effect(), done_ttl=120)
    assert 3590 < fake_redis.ttl(once.key("a")) <= 3600
    assert 110 < fake_redis.ttl(once.key("b")) <= 120


def test_the_claim_is_a_lease_while_the_effect_runs(once, fake_redis):
    seen = {}

    def effect() -> None:
        seen["value"] = fake_redis.get(once.key("x"))
        seen["ttl"] = fake_redis.ttl(once.key("x"))

    once.run("x", effect)
    assert seen["value"] not in (None, DONE)
    assert 0 < seen["ttl"] <= 60


def test_busy_while_another_worker_holds_the_lease(once, fake_redis):
    fake_redis.set(once.key("x"), "other-worker-token", ex=60)
    effect = Effect()
    with pytest.raises(Busy):
        once.run("x", effect)
    assert effect.calls == 0
    assert fake_redis.get(once.key("x")) == b"other-worker-token"  # the other claim is untouched


def test_busy_is_transient_so_the_work_is_retried(once, fake_redis):
    fake_redis.set(once.key("x"), "other-worker-token", ex=60)
    with pytest.raises(Busy) as info:
        once.run("x", Effect())
    assert is_transient(info.value)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_effect_releases_the_claim_at_once(once, fake_redis, error):
    with pytest.raises(type(error)):
        once.run("x", Effect(error=error))
    assert fake_redis.get(once.key("x")) is None
    assert not once.done("x")
    retry = Effect("second time")
    assert once.run("x", retry) == (True, "second time")


def test_a_release_that_fails_does_not_hide_the_effects_own_exception(once, fake_redis, monkeypatch):
    def redis_gone(**_: object) -> None:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(once, "_release", redis_gone)
    # e.g. the worker cancelling the task when it lost the broker: Celery must see that, not Redis's error
    with pytest.raises(SystemExit):
        once.run("x", Effect(error=SystemExit(1)))
    assert fake_redis.get(once.key("x")) not in (None, DONE)  # left to lapse with its lease


def test_a_lapsed_lease_lets_a_later_attempt_run(once, fake_redis):
    # A worker died holding the claim: nobody releases it, its lease runs out.
    fake_redis.set(once.key("x"), "dead-worker-token", px=20)
    time.sleep(0.05)
    effect = Effect()
    assert once.run("x", effect) == (True, "result")
    assert effect.calls == 1


def test_a_stale_worker_failing_does_not_release_the_claim_that_replaced_its_own(once, fake_redis):
    def effect() -> None:
        # Our lease lapsed mid-effect and another worker claimed the work.
        fake_redis.set(once.key("x"), "new-owner-token", ex=60)
        raise RuntimeError("late failure")

    with pytest.raises(RuntimeError):
        once.run("x", effect)
    assert fake_redis.get(once.key("x")) == b"new-owner-token"


# --- after an unfinished attempt: ask whether the effect is already there ------------------
# ``already`` checks are Effects too: they count their calls and answer their result.


def test_a_first_attempt_does_not_ask_already(once):
    already = Effect(True)
    assert once.run("x", Effect(), already=already) == (True, "result")
    assert already.calls == 0


def test_after_a_failed_attempt_already_decides_whether_the_effect_runs_again(once):
    with pytest.raises(RuntimeError):  # e.g. a timeout: the API may have acted
        once.run("x", Effect(error=RuntimeError("timed out")))
    there, effect = Effect(True), Effect()
    assert once.run("x", effect, already=there) == (False, None)
    assert (there.calls, effect.calls) == (1, 0)
    assert once.done("x")

    with pytest.raises(RuntimeError):
        once.run("y", Effect(error=RuntimeError("refused")))
    missing, effect = Effect(False), Effect()
    assert once.run("y", effect, already=missing) == (True, "result")
    assert (missing.calls, effect.calls) == (1, 1)


def test_a_claim_taken_over_from_a_worker_that_died_asks_already(settings, fake_redis):
    once = Once(fake_redis, settings.key_prefix, lease_seconds=0.05)
    hanging, resume = threading.Event(), threading.Event()

    def dies_mid_effect() -> None:  # never returns while the test runs: no done, no release
        hanging.set()
        resume.wait(5)

    holder = threading.Thread(target=once.run, args=("x", dies_mid_effect), daemon=True)
    holder.start()
    assert hanging.wait(5)
    with pytest.raises(Busy):
        once.run("x", Effect(), already=Effect(True))
    time.sleep(0.1)  # the lease lapses
    there, effect = Effect(True), Effect()
    assert once.run("x", effect, already=there) == (False, None)
    assert (there.calls, effect.calls) == (1, 0)
    resume.set()
    holder.join(5)


def test_a_failing_check_releases_the_claim_and_is_asked_again_next_time(once):
    with pytest.raises(RuntimeError):
        once.run("x", Effect(error=RuntimeError("timed out")))
    with pytest.raises(ConnectionError):
        once.run("x", Effect(), already=Effect(error=ConnectionError("get_chat failed")))
    there = Effect(True)
    assert once.run("x", Effect(), already=there) == (False, None)
    assert there.calls == 1


def test_done_leaves_only_the_done_key_and_a_failure_leaves_a_marker_that_expires(once, fake_redis):
    with pytest.raises(RuntimeError):
        once.run("x", Effect(error=RuntimeError("boom")), done_ttl=120)
    [marker] = fake_redis.keys("*")
    assert 110 < fake_redis.ttl(marker) <= 120
    once.run("x", Effect(), done_ttl=120)
    assert fake_redis.keys("*") == [once.key("x").encode()]


def test_keys_live_under_the_prefix(once, settings):
    assert once.key("x").startswith(settings.key_prefix)


def test_a_deferred_done_mark_is_written_with_the_tasks_writes(settings, fake_redis):
    writes: list = []
    once = Once(fake_redis, settings.key_prefix, lease_seconds=60, done_ttl=3600,
                defer=lambda write, written: writes.append((write, written)))
    effect = Effect()
    assert once.run("tag:T1:refund", effect) == (True, "result")
    assert fake_redis.get(once.key("tag:T1:refund")) != DONE and len(writes) == 1  # not yet written
    assert once.done("tag:T1:refund") and once.run("tag:T1:refund", effect) == (False, None)  # done here meanwhile
    write, written = writes[0]
    with fake_redis.pipeline() as pipe:
        write(pipe)
        pipe.execute()
    written()
    key = once.key("tag:T1:refund")
    assert fake_redis.get(key) == DONE and not fake_redis.exists(f"{key}:tried")
    assert effect.calls == 1


def test_a_task_lost_before_its_writes_leaves_the_next_attempt_to_ask_already(settings, fake_redis):
    lost = Once(fake_redis, settings.key_prefix, lease_seconds=0.05, done_ttl=3600, defer=lambda write, written: None)
    lost.run("msg:T1:1", Effect())  # the effect is made; the done mark never written
    other = Once(fake_redis, settings.key_prefix, lease_seconds=60, done_ttl=3600)
    with pytest.raises(Busy):
        other.run("msg:T1:1", Effect())  # within the lost task's lease
    time.sleep(0.1)
    asked: list[bool] = []
    effect = Effect()
    assert other.run("msg:T1:1", effect, already=lambda: asked.append(True) or True) == (False, None)
    assert asked == [True] and effect.calls == 0 and other.done("msg:T1:1")

