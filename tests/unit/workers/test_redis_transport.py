from types import SimpleNamespace

import pytest
import redis
from kombu.transport import redis as kombu_redis

from tests.conftest import make_settings
from workers import redis_transport
from workers.celery_app import celery_config


class _Kombu:
    def _connparams(self, asynchronous: bool = False) -> dict:
        return {"host": "127.0.0.1", "asynchronous": asynchronous}


class _Probe(redis_transport._DroppedClientIsAConnectionError, _Kombu):
    """The change over a stand-in for kombu's channel, with the transport's client we give it."""

    def __init__(self, client: object) -> None:
        self.connection = SimpleNamespace(client=client)


def test_a_channel_whose_connection_was_dropped_fails_as_a_connection_error_kombu_and_celery_handle():
    with pytest.raises(redis.ConnectionError, match="already closed"):
        _Probe(client=None)._connparams()
    assert redis.ConnectionError in kombu_redis.Transport.connection_errors


def test_a_live_connection_s_parameters_are_kombu_s_own():
    assert _Probe(client=object())._connparams(asynchronous=True) == {"host": "127.0.0.1", "asynchronous": True}


def test_the_channels_are_kombu_s_with_the_change():
    assert issubclass(redis_transport.Transport.Channel, kombu_redis.Channel)
    assert issubclass(redis_transport.SentinelTransport.Channel, kombu_redis.SentinelChannel)
    assert redis_transport.SentinelTransport.Channel.do_restore  # restored at close when the connection allows


@pytest.mark.parametrize(("url", "transport"), [
    ("redis://127.0.0.1:6379/0", "workers.redis_transport:Transport"),
    ("sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380/0", "workers.redis_transport:SentinelTransport"),
    ("rediss://127.0.0.1:6380/0", None),  # kombu's own: its TLS defaults come with the scheme
    ("amqp://guest:guest@127.0.0.1:5672//", None),
])
def test_the_worker_uses_the_transport_for_its_broker(url, transport):
    assert celery_config(make_settings(CELERY_BROKER_URL=url)).get("broker_transport") == transport
