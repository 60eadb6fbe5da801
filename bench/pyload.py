"""The Python load generator, for machines without wrk: processes of threads, one connection per request.

Each request opens a connection, sends ``Connection: close`` and reads to the end, as a
client of gunicorn's sync workers does anyway. At a fixed rate, latency counts from the
request's scheduled time, so a stalled server cannot hide its backlog.
"""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from urllib.parse import urlsplit

from bench.bodies import PLACEHOLDER, run_token
from bench.load import PATH, LoadResult, percentile

TIMEOUT = 10.0


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first: float = float("inf")
    last: float = 0.0


@dataclass(frozen=True)
class _Job:
    host: str
    port: int
    start_at: float
    threads: int
    bodies: list[str] | None = None  # replay: this process's bodies
    template: str | None = None  # timed: the template and its unique token
    token: str = ""
    until: float = 0.0
    interval: float = 0.0  # seconds between one thread's requests at a fixed rate
    first: int = 0  # the global number of this process's first thread, of ``connections`` in all
    connections: int = 1
    path: str = PATH
    headers: tuple[str, ...] = ()


class PythonLoad:
    name = "python"
    version = f"bench.pyload (Python {platform.python_version()})"

    def timed(self, url: str, template: str, seconds: float, connections: int, path: str = PATH,
              headers: tuple[str, ...] = ()) -> LoadResult:
        return self.paced(url, template, seconds, connections, None, path, headers)

    def paced(self, url: str, template: str, seconds: float, connections: int, rate: float | None,
              path: str = PATH, headers: tuple[str, ...] = ()) -> LoadResult:
        """``timed`` at ``rate`` requests/s in all (None: as fast as the connections go), to ``path``
        (query string included). A connection opens only when its request is due, so no gunicorn sync
        worker waits on an idle one."""
        host, port = _address(url)
        token, start = run_token(), time.time() + 0.5
        interval = connections / rate if rate else 0.0
        shares = _split(connections)
        jobs = [_Job(host, port, start, threads, template=template, token=f"{token}{p:02d}", until=start + seconds,
                     interval=interval, first=sum(shares[:p]), connections=connections, path=path,
                     headers=headers)
                for p, threads in enumerate(shares)]
        return _run(jobs, start)

    def replay(self, url: str, bodies: list[str], connections: int) -> LoadResult:
        host, port = _address(url)
        start = time.time() + 0.5
        shares = _split(min(connections, len(bodies)))
        jobs = [_Job(host, port, start, threads, bodies=bodies[p::len(shares)]) for p, threads in enumerate(shares)]
        return _run(jobs, start)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _split(connections: int) -> list[int]:
    """Threads per process: as many processes as cores, connections spread over them."""
    processes = max(1, min(connections, os.cpu_count() or 1))
    return [connections // processes + (1 if p < connections % processes else 0) for p in range(processes)]


def _run(jobs: list[_Job], start: float) -> LoadResult:
    with ProcessPoolExecutor(len(jobs), mp_context=get_context("fork")) as pool:
        tallies = list(pool.map(_process, jobs))
    latencies = sorted(x for t in tallies for x in t.latencies)
    first = min((t.first for t in tallies), default=start)
    last = max((t.last for t in tallies), default=start)
    return LoadResult(
        requests=len(latencies),
        errors=sum(t.errors for t in tallies),
        seconds=max(0.0, last - first),
        latency_ms={**{f"p{p}": percentile(latencies, p) * 1000 for p in (50, 90, 99)},
                    "max": (latencies[-1] if latencies else 0.0) * 1000},
        started=first,
    )


def _process(job: _Job) -> _Tally:
    tally, lock = _Tally(), threading.Lock()
    replay = iter(job.bodies) if job.bodies is not None else None
    threads = [threading.Thread(target=_client, args=(job, t, replay, tally, lock)) for t in range(job.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def _client(job: _Job, number: int, replay: Iterator[str] | None, tally: _Tally, lock: threading.Lock) -> None:
    time.sleep(max(0.0, job.start_at - time.time()))
    # Every thread's schedule starts at its own point of one interval, so no two send together.
    due = time.time() + job.interval * (job.first + number) / job.connections
    sent = 0
    while True:
        if replay is not None:
            with lock:
                body = next(replay, None)
            if body is None:
                return
        else:
            if time.time() >= job.until:
                return
            sent += 1
            body = job.template.replace(PLACEHOLDER, f"{job.token}{number:02d}{sent:08d}")  # type: ignore[union-attr]
        if job.interval:
            time.sleep(max(0.0, due - time.time()))
        began = due if job.interval else time.time()
        ok = _post(job.host, job.port, body.encode(), job.path, job.headers)
        ended = time.time()
        due += job.interval
        with lock:
            tally.first = min(tally.first, began)
            tally.last = max(tally.last, ended)
            if ok:
                tally.latencies.append(ended - began)
            else:
                tally.errors += 1


def _post(host: str, port: int, body: bytes, path: str = PATH, headers: tuple[str, ...] = ()) -> bool:
    """One request on a fresh connection; True for a 2xx answer."""
    extra = "".join(f"{line}\r\n" for line in headers)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.sendall(head + body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError:
        return False
    return answer[9:10] == b"2"  # "HTTP/1.1 2xx"
