import pytest
import redis
from celery.exceptions import Reject, SoftTimeLimitExceeded
from celery.signals import task_failure

from chathooks.queue_message import PROCESS_DELIVERY, RUN_JOB, TICK
from tests.conftest import make_settings
from tests.unit.workers.conftest import RULES
from workers import tasks
from workers.celery_app import create_celery_app
from workers.runtime import REDIS_TIMEOUT, Runtime, install, redis_timeout


def failing(errors):  # type: ignore[no-untyped-def]
    """Work that fails with each of ``errors`` in turn, then succeeds; counts its runs."""
    runs = []

    def work() -> None:
        runs.append(1)
        if len(runs) <= len(errors):
            raise errors[len(runs) - 1]

    return work, runs


def test_redis_failing_mid_task_puts_the_message_back_when_redis_is_the_broker(dry_rt, monkeypatch):
    monkeypatch.setattr(tasks.time, "sleep", lambda _: None)
    for error in (redis.ConnectionError("restarting"), redis.TimeoutError("slow")):
        work, runs = failing([error])
        with pytest.raises(Reject) as info:
            tasks.through_redis_outages(dry_rt, work)
        assert info.value.requeue is True and len(runs) == 1


def test_on_rabbitmq_the_task_waits_for_redis_and_runs_again_spending_no_delivery(fake_redis, clock, monkeypatch):
    """A requeue would count toward the quorum queue's delivery limit: an outage is no poison."""
    monkeypatch.setattr(tasks.time, "sleep", lambda _: None)
    settings = make_settings(CELERY_BROKER_URL="amqp://guest:guest@localhost:5672//")
    rt = Runtime.build(settings, fake_redis, rules=RULES, clock=clock)
    rt.journal.count("processed:livechat")  # a run cut short: its counts are not written twice
    work, runs = failing([redis.ConnectionError("restarting")] * 3)
    tasks.through_redis_outages(rt, work)
    assert len(runs) == 4
    rt.journal.flush()
    assert fake_redis.hget(rt.keys.metrics, "processed:livechat") is None


def test_on_rabbitmq_an_outage_past_half_the_time_limit_gives_the_message_back(fake_redis, clock, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    monkeypatch.setattr(tasks.time, "monotonic", lambda: now[0])
    settings = make_settings(CELERY_BROKER_URL="amqp://guest:guest@localhost:5672//", CHATHOOKS_TASK_TIME_LIMIT="10",
                             CHATHOOKS_VISIBILITY_TIMEOUT="20")
    rt = Runtime.build(settings, fake_redis, rules=RULES, clock=clock)
    work, runs = failing([redis.ConnectionError("down")] * 100)
    with pytest.raises(Reject):
        tasks.through_redis_outages(rt, work)
    assert len(runs) == 5  # a second apart, for half of the 10 s limit


def test_other_failures_pass_through(dry_rt):
    work, _ = failing([KeyError("a bug")])
    with pytest.raises(KeyError):
        tasks.through_redis_outages(dry_rt, work)


def test_a_task_cut_short_by_its_soft_time_limit_closes_its_redis_connections(dry_rt, monkeypatch):
    """Celery raises the soft limit wherever the task is: between a pipeline's send and its replies too."""
    app = create_celery_app(dry_rt.settings)
    install(app, dry_rt)
    closed = []
    monkeypatch.setattr(dry_rt.redis.connection_pool, "disconnect", lambda *a, **k: closed.append(1))
    for task in (PROCESS_DELIVERY, RUN_JOB, TICK):
        task_failure.send(sender=app.tasks[task], exception=KeyError("a bug"))
        task_failure.send(sender=app.tasks[task], exception=SoftTimeLimitExceeded())
    assert closed == [1, 1, 1]


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

    assert celery_config(settings)["task_send_sent_event"] is False


def test_task_events_are_off_unless_asked_for_flower_turns_them_on_while_it_runs(settings):
    from workers.celery_app import celery_config

    assert celery_config(settings)["worker_send_task_events"] is False
    assert celery_config(make_settings(CHATHOOKS_TASK_EVENTS="1"))["worker_send_task_events"] is True


def test_a_workers_redis_calls_give_up_well_within_the_task_time_limit():
    assert redis_timeout(make_settings(CHATHOOKS_TASK_TIME_LIMIT="5")) == 1.25
    assert redis_timeout(make_settings()) == REDIS_TIMEOUT
