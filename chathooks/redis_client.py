"""Redis clients that fail fast: an unreachable Redis must become a 503 well inside LiveChat's 10 s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel

from chathooks.settings import Settings

DEFAULT_MASTER = "mymaster"


def connect(url: str, timeout: float, master: str = DEFAULT_MASTER) -> redis.Redis:
    """A client with short socket timeouts and one quick retry of a dropped connection.

    Timeouts are not retried: a hung Redis would otherwise cost several timeouts per command
    (the command's retries times the connection handshake's). A ``sentinel://`` URL (several, joined by
    ``;``) gives a client of ``master`` that asks the sentinels again after a failover.
    """
    options = dict(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1, supported_errors=(redis.ConnectionError,)),
        health_check_interval=30,
    )
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    parts = [urlsplit(part) for part in url.split(";")]
    hosts = [(p.hostname or "localhost", p.port or 26379) for p in parts]
    last = parts[-1]
    auth = {"password": unquote(last.password)} if last.password else {}
    sentinel = Sentinel(hosts, socket_timeout=timeout, socket_connect_timeout=timeout)
    return sentinel.master_for(master, db=int(last.path.strip("/") or 0), **auth, **options)


def state_client(settings: Settings, timeout: float | None = None) -> redis.Redis:
    """A client of the pipeline's Redis (REDIS_URL), with the settings' timeout unless ``timeout``."""
    return connect(settings.redis_url, settings.redis_timeout_seconds if timeout is None else timeout,
                   settings.redis_sentinel_master)


def replicated(client: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any],
               wait_ms: int) -> tuple[Any, int | None]:
    """Run ``script``, then, with ``wait_ms``, ``WAIT 1`` in the same round trip: (its result, how many
    replicas have it; None when not asked).

    A replica promoted by a failover then holds what the script wrote, unless none confirmed in time.
    """
    if not wait_ms:
        return script(keys=keys, args=args), None
    for _ in range(2):
        with client.pipeline(transaction=False) as pipe:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", 1, wait_ms)
            try:
                result, replicas = pipe.execute()
                return result, int(replicas)
            except redis.exceptions.NoScriptError:  # a new master (after a failover) has no scripts yet
                client.script_load(script.script)
    raise redis.exceptions.NoScriptError("the script could not be loaded")


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")
