"""kombu's Redis and Sentinel transports, with a dropped connection failing as a connection error.

After a broker error Celery's consumer collects its connection, which drops the transport's client,
and then closes it again. Closing the channel restores its unacknowledged messages through a new
pool built from that client, and in kombu 5.7 the missing client is an ``AttributeError``
(``'NoneType' object has no attribute 'hostname'``): not a connection error, so the consumer, and
with it the worker, dies. Raising a connection error instead lets the close finish and the consumer
reconnect; the messages it could not restore stay in the unacked hash, which the visibility-timeout
sweep restores (and which Sentinel replicates to the new master).
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class _DroppedClientIsAConnectionError:
    connection: Any

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("the broker connection was already closed")
        return super()._connparams(asynchronous)  # type: ignore[misc]


class Channel(_DroppedClientIsAConnectionError, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_DroppedClientIsAConnectionError, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
