"""Redis clients that fail fast: an unreachable Redis must become a 503 well inside LiveChat's 10 s."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def connect(url: str, timeout: float) -> redis.Redis:
    """A client with short socket timeouts and one quick retry of a dropped connection.

    Timeouts are not retried: a hung Redis would otherwise cost several timeouts per command
    (the command's retries times the connection handshake's).
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1, supported_errors=(redis.ConnectionError,)),
        health_check_interval=30,
    )
