"""An in-process fake HTTP server to run real clients against, with recorded requests and programmable faults.

Subclasses implement ``handle(request) -> Reply`` (called under ``self.lock``, so their state
needs no other locking) and may override ``route(request)`` to name routes for faults and records.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    json: Any  # None when the body is empty or not JSON
    time: float
    route: str
    client: tuple[str, int]  # the caller's address (to tell which process sent it)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # None: empty body; bytes/str: sent as is; else JSON-encoded
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) answering normally.

    By default the request is handled late (after ``delay``) or, with ``close``, never. With
    ``process`` it is handled at once and only its answer is late or lost: the server did the
    work, the client cannot know.
    """

    reply: Reply | None = None  # answer this instead of calling handle()
    delay: float = 0.0  # sleep first (to make clients time out)
    close: bool = False  # then drop the connection without answering
    process: bool = False  # handle the request before the delay (and the close)
    when: Callable[[Request], bool] | None = None  # only for requests this accepts (default: any)


class FakeHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) served from a daemon thread."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.errors: list[BaseException] = []  # exceptions raised by handle(): bugs in the fake
        self._requests: list[Request] = []
        self._faults: dict[str, list[Fault]] = defaultdict(list)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> Self:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        # A short poll interval keeps stop(), and so every test's teardown, fast.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.01,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open (keep-alive) connections, so later calls fail to connect."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Test helpers

    def recorded(self, route: str | None = None) -> list[Request]:
        """Every request received (faulted ones included), oldest first, optionally for one route."""
        with self.lock:
            return [r for r in self._requests if route is None or r.route == route]

    def inject(self, route: str, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests on ``route`` ("*" matches every route) it accepts."""
        with self.lock:
            self._faults[route].extend([fault] * times)

    def fail(
        self,
        route: str,
        reply: Reply | None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        close: bool = False,
        times: int = 1,
        process: bool = False,
        when: Callable[[Request], bool] | None = None,
    ) -> None:
        """``inject`` the fault a fake's ``fail_next`` describes: ``reply`` (None: the normal answer),
        with a ``Retry-After`` header when ``retry_after`` is given, late by ``delay``, or ``close``."""
        if reply is not None and retry_after is not None:
            reply = replace(reply, headers={**reply.headers, "Retry-After": str(retry_after)})
        self.inject(route, Fault(reply, delay or 0.0, close, process, when), times)

    def reset_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    # For subclasses

    def route(self, request: Request) -> str:
        """The name faults and records are filed under; default ``"<METHOD> <path>"``."""
        return f"{request.method} {request.path}"

    def handle(self, request: Request) -> Reply:
        return Reply(404, {"error": "no such route"})

    # Internals (called from handler threads)

    def _receive(self, request: Request) -> Fault | None:
        with self.lock:
            self._requests.append(request)
            for key in (request.route, "*"):
                faults = self._faults.get(key) or []
                for n, fault in enumerate(faults):
                    if fault.when is None or fault.when(request):
                        return faults.pop(n)
        return None

    def _answer(self, request: Request) -> Reply:
        with self.lock:
            try:
                return self.handle(request)
            except Exception as exc:  # a bug in the fake: answer and keep it for the test to see
                self.errors.append(exc)
                return Reply(500, {"error": {"type": "internal", "message": f"fake crashed: {exc!r}"}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or disconnect leave broken sockets behind; that is expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.fake.lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake.lock:
            self.server.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers=CaseInsensitiveDict(self.headers.items()),
            body=body,
            json=payload,
            time=time.time(),
            route="",
            client=self.client_address[:2],
        )
        request = replace(request, route=fake.route(request))
        fault = fake._receive(request) or Fault()
        reply = fault.reply or (fake._answer(request) if fault.process else None)
        if fault.delay:
            fake._stopping.wait(fault.delay)
        if fault.close:
            self.close_connection = True
            return
        self._send(reply or fake._answer(request))

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            data = b""
        elif isinstance(reply.body, bytes):
            data = reply.body
        elif isinstance(reply.body, str):
            data = reply.body.encode()
        else:
            data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch
