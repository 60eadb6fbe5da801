"""Redis clients that fail fast: an unreachable Redis must become a 503 well inside LiveChat's 10 s."""

from __future__ import annotations

import hashlib
import select
import ssl
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from hiredis import pack_command
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _HiredisParser
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from chathooks.settings import Settings

Write = Callable[[redis.client.Pipeline], None]  # a write to go on someone's pipeline (a task's flush)

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
        client = redis.Redis(connection_pool=ReadyPool.from_url(url, **options))
        client.auto_close_connection_pool = True  # as from_url's: close() closes the pool's connections
        return client
    parts = [urlsplit(part) for part in url.split(";")]
    hosts = [(p.hostname or "localhost", p.port or 26379) for p in parts]
    last = parts[-1]
    auth = {"password": unquote(last.password)} if last.password else {}
    sentinel = Sentinel(hosts, socket_timeout=timeout, socket_connect_timeout=timeout)
    return sentinel.master_for(master, db=int(last.path.strip("/") or 0), **auth, **options)


class ReadyPool(redis.ConnectionPool):
    """redis-py's pool, its readiness check of each connection it lends made in one system call.

    Before lending a connection, redis-py makes sure no reply is left on it (a task cut short between
    a pipeline's replies leaves some) and that the server has not closed it: a non-blocking read, at
    three system calls and a raised ``BlockingIOError`` a command. Here it is a look at the hiredis
    parser's buffer and one ``poll`` of the socket: a connection with data (even half a reply, which
    redis-py would lend) or closed is reconnected. TLS connections, parsers other than hiredis and
    client-side caching keep redis-py's own check. Neither check sees a reply still on its way: a task
    cut short by its soft time limit closes the pool's connections (``drop_connections``). (Measured
    in process: 3–10 µs of client CPU less a command, PINGs and two-command pipelines.)
    """

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        if self.cache is not None:  # client-side caching: redis-py's own rules
            return super().get_connection(command_name, *keys, **options)
        self._checkpid()
        with self._lock:
            try:
                connection = self._available_connections.pop()
            except IndexError:
                connection = self.make_connection()
            self._in_use_connections.add(connection)
        try:
            connection.connect()
            try:
                ready = _ready(connection)
            except (redis.ConnectionError, redis.TimeoutError, OSError, ValueError):  # ValueError: a closed socket's fd
                ready = False
            if not ready:
                connection.disconnect()
                connection.connect()
                if not _ready(connection):
                    raise redis.ConnectionError("Connection not ready")
        except BaseException:
            self.release(connection)
            raise
        return connection


def _ready(connection: Any) -> bool:
    """No data waits on ``connection`` (in its parser or its socket) and the server has not closed it."""
    parser, sock = connection._parser, connection._sock
    reader, parsed = getattr(parser, "_reader", None), getattr(parser, "_next_response", None)
    if (not isinstance(parser, _HiredisParser) or reader is None or parsed is None or sock is None
            or isinstance(sock, ssl.SSLSocket)):  # TLS: data already decrypted is invisible to poll
        return not connection.can_read()  # redis-py's own check
    if parsed is not NOT_ENOUGH_DATA or reader.has_data():
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)  # readable: a reply left unread, or the end of a closed connection


def drop_connections(client: redis.Redis) -> None:
    """Close every connection of ``client``'s pool: after a task was cut short (Celery's soft time limit raises
    anywhere), one may have been given back with a reply still on its way."""
    client.connection_pool.disconnect()


def state_client(settings: Settings, timeout: float | None = None) -> redis.Redis:
    """A client of the pipeline's Redis (REDIS_URL), with the settings' timeout unless ``timeout``."""
    return connect(settings.redis_url, settings.redis_timeout_seconds if timeout is None else timeout,
                   settings.redis_sentinel_master)


class PackedScript:
    """A Lua script run as one EVALSHA packed here and written straight to a connection of the client's pool;
    with ``wait_ms``, ``WAIT 1`` follows in the same write (a replica promoted by a failover then holds what
    the script wrote, unless none confirmed in time).

    For the scripts run on every request or side effect. redis-py's general command path (argument
    encoding, its retry and observability wrappers, response callbacks) costs about as much CPU as the round
    trip itself (measured: 68 µs a call through ``Script``, 37 µs packed here). What the client promises
    still holds: its pool, timeouts and health checks, one retry of a dropped connection, and a script the
    server does not know (a master just promoted) loaded and run again.
    """

    def __init__(self, client: redis.Redis, script: str) -> None:
        self._client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()

    def __call__(self, keys: Sequence[str], args: Sequence[Any], wait_ms: int = 0) -> tuple[Any, int | None]:
        """(The script's result, how many replicas have its writes; None when ``wait_ms`` is 0)."""
        replies = self._run(self._packet(keys, args, wait_ms), 0, wait_ms)
        return replies[0], int(replies[1]) if wait_ms else None

    def after(self, reads: Sequence[Sequence[Any]], keys: Sequence[str], args: Sequence[Any],
              wait_ms: int = 0) -> tuple[list[Any], Any, int | None]:
        """The script run after the commands ``reads``, all in the same write: (their replies as the server sent
        them, an error reply returned and not raised; the script's result; the replicas as ``__call__``'s)."""
        replies = self._run(pack(reads) + self._packet(keys, args, wait_ms), len(reads), wait_ms)
        return replies[:len(reads)], replies[len(reads)], int(replies[-1]) if wait_ms else None

    def _packet(self, keys: Sequence[str], args: Sequence[Any], wait_ms: int) -> bytes:
        packet = pack_command(("EVALSHA", self.sha, len(keys), *keys, *args))
        return packet + pack_command(("WAIT", 1, wait_ms)) if wait_ms else packet

    def _run(self, packet: bytes, reads: int, wait_ms: int) -> list[Any]:
        """Every reply of ``packet``, the script's raised if it is an error; a script the server does not know is
        loaded and all sent again."""
        count = reads + 1 + bool(wait_ms)
        replies = _exchange_once_more(self._client, packet, count)
        if isinstance(result := replies[reads], redis.exceptions.NoScriptError):
            self._client.script_load(self.script)
            replies = _exchange_once_more(self._client, packet, count)
            result = replies[reads]
        if isinstance(result, redis.ResponseError):
            raise result
        return replies


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """Commands packed for one write (``exchange``)."""
    return b"".join(pack_command(tuple(command)) for command in commands)


def exchange(client: redis.Redis, packet: bytes, count: int) -> list[Any]:
    """Write ``packet`` (commands packed) to a connection of ``client``'s pool and read ``count`` replies, as the
    server sent them (no response callbacks; an error reply is returned, not raised)."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([packet])
        return [_reply(connection) for _ in range(count)]
    except BaseException:
        connection.disconnect()  # a reply may be left unread: the connection cannot be reused
        raise
    finally:
        pool.release(connection)


def read(client: redis.Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Read-only ``commands`` in one round trip (none: no round trip): their replies as ``exchange``'s."""
    return _exchange_once_more(client, pack(commands), len(commands)) if commands else []


def _exchange_once_more(client: redis.Redis, packet: bytes, count: int) -> list[Any]:
    """``exchange``, a dropped connection tried once more, as the client's own Retry would (never a timeout)."""
    try:
        return exchange(client, packet, count)
    except redis.ConnectionError:
        return exchange(client, packet, count)


class PipelinedScript:
    """A Lua script queued on pipelines as EVALSHA; ``execute`` loads it where the server lost it.

    EVAL would send the source, and make the server hash it, on every call; redis-py's ``Script`` on a
    pipeline asks SCRIPT EXISTS first, a round trip of its own. Only for a pipeline that is not a
    transaction, and for calls whose order after the pipeline's other commands does not matter: where the
    server lost the script, its calls run again after the rest.
    """

    _known: dict[str, str] = {}  # sha → source, of every such script: what ``execute`` loads

    def __init__(self, script: str) -> None:
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        PipelinedScript._known[self.sha] = script

    def queue(self, pipe: redis.client.Pipeline, keys: Sequence[str], args: Sequence[Any]) -> None:
        # In MULTI, the rest would commit without the script and the call run again outside it.
        if pipe.transaction:
            raise ValueError("a PipelinedScript cannot be queued on a transaction")
        pipe.evalsha(self.sha, len(keys), *keys, *args)


def execute(pipe: redis.client.Pipeline) -> list[Any]:
    """``pipe.execute()``; a ``PipelinedScript`` the server does not know (restarted, or a replica just promoted)
    is loaded and its calls sent again, after the rest. The first error left is raised, as ``execute`` would."""
    stack = pipe.command_stack[:]
    results = pipe.execute(raise_on_error=False)
    if not any(isinstance(r, Exception) for r in results):
        return results
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)
               and stack[i][0][0] == "EVALSHA" and stack[i][0][1] in PipelinedScript._known]
    if missing:
        shas = {stack[i][0][1] for i in missing}
        with redis.Redis(connection_pool=pipe.connection_pool).pipeline(transaction=False) as again:
            for sha in shas:
                again.script_load(PipelinedScript._known[sha])
            for i in missing:
                again.execute_command(*stack[i][0], **stack[i][1])
            for i, result in zip(missing, again.execute(raise_on_error=False)[len(shas):]):
                results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _reply(connection: Any) -> Any:
    # An error reply is returned, not raised, so the reply after it (WAIT's) is still read.
    try:
        return connection.read_response()
    except redis.ResponseError as exc:
        return exc


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")
