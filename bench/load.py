"""Load generation: wrk when it is (or can be) installed, else the Python generator; one for both sides.

Both send ``POST /webhooks/livechat`` (or another route) with a fresh connection whenever the server closes one
(gunicorn's sync workers close after each response), and report the same ``LoadResult``.
Fixed rates (B2) and exact sets of bodies (B3–B5) always use the Python generator: wrk opens
its next connection before it waits or knows it is done, and an idle open connection holds one
of gunicorn's sync workers until its timeout; and wrk runs for its whole duration regardless.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol

PATH = "/webhooks/livechat"


@dataclass(frozen=True)
class LoadResult:
    requests: int  # answered with a 2xx
    errors: int  # socket errors, timeouts and non-2xx answers
    seconds: float
    latency_ms: dict[str, float]  # "p50", "p90", "p99", "max"
    started: float | None = None  # epoch time of the first request, where the generator knows it

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "rps": round(self.rps, 1)}


class LoadGenerator(Protocol):
    name: str
    version: str

    def timed(self, url: str, template: str, seconds: float, connections: int, path: str = PATH,
              headers: tuple[str, ...] = ()) -> LoadResult:
        """POST ``template`` (its placeholder replaced by a token unique to each request) to ``path`` (query
        string included) for ``seconds``, as fast as ``connections`` allow; ``headers`` as ``"Name: value"``."""


def choose_generator(install: bool = True) -> LoadGenerator:
    """wrk if found, or installed now with apt-get (as root); otherwise the Python generator."""
    from bench.pyload import PythonLoad
    from bench.wrk import Wrk, find_wrk

    path = find_wrk(install)
    return Wrk(path) if path else PythonLoad()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
