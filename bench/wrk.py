"""wrk as the load generator: found on PATH, or installed from Debian's package when we are root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.bodies import run_token
from bench.load import PATH, LoadResult

LUA = Path(__file__).with_name("lua")
THREADS = 2
TIMEOUT = "10s"  # LiveChat's own patience; a slower answer counts as an error


def find_wrk(install: bool = True) -> str | None:
    """wrk's path; as root with apt-get, ``apt-get install -y wrk`` first when it is missing."""
    path = shutil.which("wrk")
    if path or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    print("bench: wrk not found; installing Debian's wrk package", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet)
    return shutil.which("wrk")


class Wrk:
    name = "wrk"

    def __init__(self, path: str) -> None:
        self.path = path
        # `wrk --version` prints its banner and exits 1.
        banner = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        self.version = banner.split("[")[0].strip() or "wrk"

    def timed(self, url: str, template: str, seconds: float, connections: int, path: str = PATH,
              headers: tuple[str, ...] = ()) -> LoadResult:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            file.write(template)
            file.flush()
            return self._run("timed.lua", url + path, min(THREADS, connections), connections,
                             max(1, round(seconds)), [file.name, run_token(), *headers])

    def _run(self, script: str, url: str, threads: int, connections: int, seconds: int, args: list[str]) -> LoadResult:
        argv = [self.path, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", TIMEOUT,
                "-s", script, url, "--", *args]
        done = subprocess.run(argv, cwd=LUA, capture_output=True, text=True, timeout=seconds + 60)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        s = json.loads(line.removeprefix("BENCH-JSON "))
        errors = s["connect"] + s["read"] + s["write"] + s["timeout"] + s["status"]
        return LoadResult(
            requests=s["requests"] - s["status"],
            errors=errors,
            seconds=s["microseconds"] / 1e6,
            latency_ms={**{f"p{p}": s[f"p{p}"] / 1000 for p in (50, 90, 99)}, "max": s["max"] / 1000},
        )
