"""How the ``chathooks`` commands print: tables, times and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Aligned columns under their headings; the last one runs free."""
    lines = [tuple(columns), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths)] + [line[-1]]
        out.write("  ".join(cells).rstrip() + "\n")


def when(at: float) -> str:
    """A time as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2, sort_keys=True)
    out.write("\n")
