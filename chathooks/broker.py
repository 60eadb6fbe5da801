"""The Celery broker as the ingress sees it: reachability, queue depths, and publishing."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

import redis

from chathooks.events import Delivery
from chathooks.queue_message import PROCESS_DELIVERY, celery_message, delivery_repr
from chathooks.redis_client import connect
from chathooks.settings import Settings

log = logging.getLogger(__name__)


class Broker:
    """A Redis broker is spoken to directly; any other (e.g. RabbitMQ) through kombu/Celery."""

    def __init__(self, settings: Settings, state_redis: redis.Redis) -> None:
        self.settings = settings
        self.redis: redis.Redis | None = None
        if settings.broker_shares_state_redis:
            self.redis = state_redis
        elif settings.broker_is_redis:
            self.redis = connect(settings.broker_url, settings.redis_timeout_seconds, settings.redis_sentinel_master)

    @property
    def queues(self) -> tuple[str, ...]:
        return (self.settings.queue, self.settings.scheduled_queue)

    def ping(self) -> bool:
        try:
            if self.redis is not None:
                return bool(self.redis.ping())
            with self._celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=self.settings.redis_timeout_seconds)
            return True
        except Exception as exc:  # any transport error means "not reachable"
            log.warning("broker not reachable: %s", type(exc).__name__)
            return False

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting per queue (Flower does not report this)."""
        if self.redis is not None:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                return dict(zip(self.queues, pipe.execute()))
        depths = {}
        with self._celery.connection_for_write() as conn:
            channel = conn.default_channel
            for queue in self.queues:
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except Exception:  # not declared yet: nothing waiting
                    depths[queue] = 0
        return depths

    def publish(self, delivery: Delivery) -> None:
        args: list[Any] = [delivery.to_message()]
        shown = delivery_repr(delivery)
        if self.redis is not None:
            self.redis.lpush(self.settings.queue,
                             celery_message(PROCESS_DELIVERY, args, self.settings.queue, argsrepr=shown))
        else:
            self._celery.send_task(PROCESS_DELIVERY, args=args, queue=self.settings.queue,
                                   ignore_result=True, retry=False, argsrepr=shown)

    @cached_property
    def _celery(self):  # type: ignore[no-untyped-def]
        from celery import Celery  # only non-Redis brokers need it

        return Celery("chathooks-ingress", broker=self.settings.broker_url, set_as_current=False)
