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


def test_the_tick_sends_no_task_events_but_the_work_does():
    assert tasks.tick.send_events is False
    assert tasks.process_delivery.send_events and tasks.run_job.send_events


@pytest.mark.parametrize(("member", "shown"), [
    ("trigger|C1|T1|1756720800.000000", "trigger chat C1"),
    ("fire|livechat|org|C1|T1|nudge|1", "fire nudge chat C1"),
    ('retry|{"attempt":2,"errors":[],"event":{"chat_id":"C1","customer_email":"j@x.org"},"handler":"tagging.match",'
     '"replays":0}', "retry tagging.match attempt 2 chat C1"),
])
def test_a_job_shows_in_flower_by_kind_and_chat_never_its_event(member, shown):
    assert tasks.job_repr(member) == shown


def test_no_task_sent_events_so_beat_s_tick_stays_out_of_flower(settings):
    from workers.celery_app import celery_config

    config = celery_config(settings)
    assert config["worker_send_task_events"] is True and config["task_send_sent_event"] is False
