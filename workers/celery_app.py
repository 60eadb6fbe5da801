"""The Celery application: JSON only, late acks, one message at a time, settings read lazily."""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from celery import Celery, bootsteps
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_failure, worker_init, worker_process_shutdown
from kombu import Queue

from chathooks import amqp
from chathooks.redis_client import drop_connections
from chathooks.rules import load_rules
from chathooks.settings import ConfigError, Settings

# kombu's own transports, with a dropped connection a connection error (see workers.redis_transport). rediss://
# stays on kombu's: its TLS defaults come with the scheme.
_TRANSPORTS = {"redis": "workers.redis_transport:Transport", "sentinel": "workers.redis_transport:SentinelTransport"}


def celery_config(settings: Settings) -> dict[str, Any]:
    scheme = urlsplit(settings.broker_url).scheme
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.queue,
        "beat_schedule": {
            "chathooks-tick": {"task": "chathooks.tick", "schedule": 1.0,
                               "options": {"queue": settings.scheduled_queue, "expires": 5}},
        },
        # Below the visibility timeout (Settings checks it), so Redis never hands a running task
        # to a second worker; the soft limit leaves the task time to release its claims.
        "task_time_limit": settings.task_time_limit_seconds,
        "task_soft_time_limit": settings.task_time_limit_seconds - max(1, settings.task_time_limit_seconds // 6),
        # Off by default: they cost a third of a worker's throughput (B3 events in make bench), and Flower
        # enables them on every worker every few seconds while it runs anyway.
        "worker_send_task_events": settings.task_events,
        # Workers' received/started/succeeded events tell Flower of every task. A sent event would also come
        # from beat for its one-second tick, which sends no events of its own, and fill Flower's history with it.
        "task_send_sent_event": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "timezone": "UTC",
        "enable_utc": True,
        **_broker_config(settings, scheme),
    }


def _broker_config(settings: Settings, scheme: str) -> dict[str, Any]:
    if not settings.broker_is_redis:
        return {
            # Quorum queues with a delivery limit, dead-lettered (chathooks.amqp). Each queue has a consumer
            # with its own prefetch (no global QoS on quorum queues), so timers never wait behind the backlog.
            "task_queues": amqp.task_queues(settings),
            # Beat's ticks and the workers' own jobs are confirmed too, or a publish could vanish unnoticed.
            "broker_transport_options": {"confirm_publish": True},
            "broker_channel_error_retry": True,
        }
    return {
        **({"broker_transport": _TRANSPORTS[scheme]} if scheme in _TRANSPORTS else {}),
        # Timers first: a backlog of deliveries must not make a nudge late.
        "task_queues": tuple(Queue(q, routing_key=q) for q in (settings.scheduled_queue, settings.queue)),
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout_seconds,
            "queue_order_strategy": "priority",
            # Sweep for messages of vanished workers every 10 s, not kombu's default 100 s.
            "unacked_restore_throttle": 1,
            **({"master_name": settings.redis_sentinel_master} if scheme == "sentinel" else {}),
        },
    }


class ChathooksCelery(Celery):
    """Celery app whose configuration comes from ``Settings`` when first needed, not at import."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("chathooks", set_as_current=settings is None)
        self._given_settings = settings
        self.on_configure.connect(self._configure, weak=False)

    @cached_property
    def chathooks_settings(self) -> Settings:
        if self._given_settings is not None:
            return self._given_settings
        try:
            return Settings.from_env()
        except ConfigError as exc:
            # One clear line instead of a traceback from deep inside Celery's start-up.
            raise SystemExit(f"chathooks: configuration error: {exc}") from None

    def _configure(self, **_: object) -> None:
        self.config_from_object(celery_config(self.chathooks_settings))


class DeclareQueues(bootsteps.StartStopStep):
    """RabbitMQ: every queue declared before consuming, the dead ones too: a message dead-lettered into a
    queue that does not exist yet would be dropped."""

    requires = {"celery.worker.consumer.connection:Connection"}

    def include_if(self, c: Any) -> bool:
        return not c.app.chathooks_settings.broker_is_redis

    def start(self, c: Any) -> None:
        amqp.declare(c.connection.default_channel, c.app.chathooks_settings)


def create_celery_app(settings: Settings | None = None) -> ChathooksCelery:
    app = ChathooksCelery(settings)
    app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
    app.steps["consumer"].add(DeclareQueues)

    @worker_init.connect(weak=False)
    def check_rules(**_: object) -> None:
        """A bad rules file stops the worker at start, not at its first task."""
        try:
            load_rules(app.chathooks_settings.rules_path)
        except ConfigError as exc:
            raise SystemExit(f"chathooks: configuration error: {exc}") from None

    @task_failure.connect(weak=False)
    def drop_cut_connections(sender: Any = None, exception: BaseException | None = None, **_: object) -> None:
        """A task cut short by its soft time limit, raised wherever it was (a handler's own is ``run_handler``'s),
        closes the process's Redis connections: see ``drop_connections``."""
        if isinstance(exception, SoftTimeLimitExceeded) and getattr(sender, "app", None) is app:
            from workers.runtime import runtime_for  # at run time, as below

            drop_connections(runtime_for(app).redis)

    @worker_process_shutdown.connect(weak=False)
    def write_observations(**_: object) -> None:
        """A pool process stopping writes its last second of observations."""
        from workers.runtime import flush_all  # at run time: importing workers.runtime builds this app first

        flush_all()

    return app
