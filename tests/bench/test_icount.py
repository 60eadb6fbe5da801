"""``python -m bench.icount`` counts a delivery's instructions on both of B3T's sides (needs valgrind)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
def test_both_sides_are_counted_and_compared() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.icount", "--chats", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = dict(re.findall(r"^(\S+) +10 deliveries: ([\d,]+) instructions", done.stdout, re.M))
    assert set(counts) == {"no-triggers", "triggers"}
    assert all(int(n.replace(",", "")) > 100_000 for n in counts.values())  # counted, not zero
    assert re.search(r"20 triggers cost \d+\.\d\dx the instructions of none", done.stdout)
