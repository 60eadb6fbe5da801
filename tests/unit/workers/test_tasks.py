import pytest
import redis
from celery.exceptions import Reject

from workers import tasks


def test_redis_failing_mid_task_puts_the_message_back(monkeypatch):
    monkeypatch.setattr(tasks.time, "sleep", lambda _: None)
    for error in (redis.ConnectionError("restarting"), redis.TimeoutError("slow")):
        with pytest.raises(Reject) as info, tasks.redelivered_if_redis_fails():
            raise error
        assert info.value.requeue is True


def test_other_failures_pass_through():
    with pytest.raises(KeyError), tasks.redelivered_if_redis_fails():
        raise KeyError("a bug")
