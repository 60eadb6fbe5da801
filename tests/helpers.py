"""Small helpers shared by the unit and integration tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-secret"
# The local Redis, for what fakeredis does not do as Redis does (WAIT, cjson, dropped connections).
REAL_REDIS_URL = "redis://127.0.0.1:6379/15"

T = TypeVar("T")


def fixture(name: str, source: str = "livechat") -> dict[str, Any]:
    """A webhook body from tests/fixtures/<source>/<name>.json."""
    return json.loads((FIXTURES / source / f"{name}.json").read_text())


def fixture_names(source: str = "livechat") -> list[str]:
    return sorted(p.stem for p in (FIXTURES / source).glob("*.json"))


def wait_for(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        time.sleep(interval)


class Clock:
    """A settable clock, for code that takes ``clock=``."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
