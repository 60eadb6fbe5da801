"""CPU pinning for B4: the workers on cores of their own, everything else (Redis, the web, the load
generator) on the rest, so B4 shows how the workers scale, not how the machine's cores are shared."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import psutil


def split() -> tuple[set[int], set[int]] | None:
    """(the cores for everything else, the workers' cores): core 0, and the rest; None on one core."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return {cores[0]}, set(cores[1:])


def taskset(cores: set[int]) -> list[str]:
    """The argv prefix that starts a command (and every process it forks) on ``cores``."""
    return ["taskset", "-c", ",".join(map(str, sorted(cores)))]


@contextlib.contextmanager
def pinned(pids: Iterable[int], cores: set[int]) -> Iterator[None]:
    """Each of ``pids``, their children and this process (whose forks are the load generator) on ``cores``,
    for the block; as they were after it."""
    processes = [psutil.Process()]
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            processes += [parent, *parent.children(recursive=True)]
    before = {}
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            before[p] = p.cpu_affinity()
            p.cpu_affinity(sorted(cores))
    try:
        yield
    finally:
        for p, affinity in before.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.cpu_affinity(affinity)
