"""The local RabbitMQ (``CHATHOOKS_AMQP_URL`` names another) as a test's broker, reached through a TcpProxy
the test can cut; its queues named after the test's and deleted after (bench.amqp_target)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from bench.amqp_target import AMQP_URL, delete, reachable, ready
from tests.fakes.tcp_proxy import TcpProxy

__all__ = ["AMQP_URL", "delete", "proxied", "reachable", "ready", "start_proxy"]


def proxied(proxy: TcpProxy) -> str:
    """The broker URL through ``proxy``."""
    parts = urlsplit(AMQP_URL)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{proxy.port}"))


def start_proxy() -> TcpProxy:
    parts = urlsplit(AMQP_URL)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
