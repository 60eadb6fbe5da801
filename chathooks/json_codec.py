"""JSON written on every request and task: orjson, at a tenth of json.dumps's cost, with json's reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def dumps(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """``value`` as compact UTF-8 JSON; what orjson refuses (integers beyond 64 bits, keys that are not strings)
    as json encodes it. ``default`` turns what neither knows into something they do (``str``, say)."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=sort_keys, default=default, separators=(",", ":")).encode()
