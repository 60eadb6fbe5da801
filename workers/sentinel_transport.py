"""kombu's Sentinel transport, without restoring unacknowledged messages when a channel closes.

When the master goes away, kombu 5.7 closes the channel and tries to restore its unacknowledged
messages through a new pool built from a connection it has already dropped, and the worker dies
(``AttributeError: 'NoneType' object has no attribute 'hostname'``). Those messages are kept in the
unacked hash, replicated, and restored by the visibility-timeout sweep on the new master: nothing
needs restoring at close.
"""

from __future__ import annotations

from kombu.transport.redis import SentinelChannel, SentinelTransport


class Channel(SentinelChannel):
    do_restore = False


class Transport(SentinelTransport):
    Channel = Channel
