"""The Celery broker as the ingress sees it: reachability, queue depths, and publishing."""

from __future__ import annotations

import logging

import redis

from chathooks.amqp import Publisher
from chathooks.events import Delivery
from chathooks.queue_message import PROCESS_DELIVERY, delivery_message, delivery_repr
from chathooks.redis_client import connect
from chathooks.settings import Settings

log = logging.getLogger(__name__)


class Broker:
    """A Redis broker is spoken to directly, RabbitMQ through this process's confirmed publisher."""

    def __init__(self, settings: Settings, state_redis: redis.Redis) -> None:
        self.settings = settings
        self.redis: redis.Redis | None = None
        self.amqp: Publisher | None = None
        if not settings.broker_is_redis:
            self.amqp = Publisher(settings)
        elif settings.broker_shares_state_redis:
            self.redis = state_redis
        else:
            self.redis = connect(settings.broker_url, settings.redis_timeout_seconds, settings.redis_sentinel_master)

    @property
    def queues(self) -> tuple[str, ...]:
        return (self.settings.queue, self.settings.scheduled_queue)

    def ping(self) -> bool:
        if self.amqp is not None:
            return self.amqp.ping()
        try:
            return bool(self.redis.ping())
        except redis.RedisError as exc:
            log.warning("broker not reachable: %s", type(exc).__name__)
            return False

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting per queue (Flower does not report this)."""
        if self.redis is not None:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                return dict(zip(self.queues, pipe.execute()))
        return self.amqp.depths(self.queues)

    def publish(self, delivery: Delivery) -> None:
        if self.amqp is not None:
            self.amqp.publish(self.settings.queue, PROCESS_DELIVERY, [delivery.to_message()], delivery_repr(delivery))
        else:
            self.redis.lpush(self.settings.queue, delivery_message(delivery, self.settings.queue))
