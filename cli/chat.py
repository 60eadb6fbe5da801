"""``chathooks chat CHAT_ID [--json]``: a chat's story in time order, from its timeline and the schedule.

Deliveries (queued, or answered as duplicates), handler runs (done, retried, dead-lettered), effects
(sent, or skipped and why) and timers (fired, or pending). No message text; emails masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

import redis

from chathooks.events import rfc3339
from chathooks.keys import Keys
from chathooks.triggers.rules import NUDGE
from workers.scheduler import describe

_EMAIL = re.compile(r"([A-Za-z0-9])[^@\s\"]*(@[^\s\"]+)")


def mask(text: str) -> str:
    """``jane@example.org`` → ``j***@example.org``."""
    return _EMAIL.sub(r"\1***\2", text)


def story(client: redis.Redis, keys: Keys, chat_id: str, *, source: str | None = None,
          organization: str | None = None) -> list[dict[str, Any]] | None:
    """The chat's entries in time order (SPEC §8's shape); None when nothing is known of it."""
    stored = client.zrange(keys.timeline(chat_id), 0, -1, withscores=True)
    pending = list(_pending(client, keys, chat_id))
    if not stored and not pending:
        return None
    entries: list[tuple[float, dict[str, Any]]] = []
    for member, score in stored:
        entries += _entries(json.loads(member), score)
    entries += pending
    wanted = [(at, e) for at, e in entries
              if (source is None or e["detail"].get("source") in (None, source))
              and (organization is None or e["detail"].get("organization") in (None, organization))]
    wanted.sort(key=lambda pair: pair[0])
    return [{"at": rfc3339(at), **entry} for at, entry in wanted]


def _entry(kind: str, name: str, outcome: str, **detail: Any) -> dict[str, Any]:
    detail = {k: v for k, v in detail.items() if v is not None}
    return {"type": kind, "name": name, "outcome": outcome, "detail": detail}


def _entries(stored: dict[str, Any], at: float) -> list[tuple[float, dict[str, Any]]]:
    kind = stored.get("type")
    if kind == "delivery":
        finished = float(stored.get("finished") or at)
        common = {"source": stored.get("source"), "organization": stored.get("organization")}
        return [(at, _entry("delivery", stored.get("action", ""), stored.get("outcome", "queued"),
                            id=stored.get("id"), **common)),
                *((finished, _entry("handler", name, "done", delivery=stored.get("id"), **common))
                  for name in stored.get("handlers", ()))]
    if kind in ("handler", "effect", "timer"):
        detail = {k: v for k, v in stored.items() if k not in ("type", "name", "outcome")}
        return [(at, _entry(kind, stored["name"], stored["outcome"], **detail))]
    return []  # the events themselves: their deliveries tell of them


def _pending(client: redis.Redis, keys: Keys, chat_id: str) -> Iterable[tuple[float, dict[str, Any]]]:
    """The schedule's jobs for this chat: trigger moments, fired actions' backstops, retries."""
    for raw, due in client.zscan_iter(keys.schedule, match=f"*{_glob(chat_id)}*", count=1000):
        job = describe(raw.decode())
        if job.chat_id != chat_id:
            continue  # the id appears elsewhere in the job's name
        if job.kind == "fire":
            name = "nudge" if job.detail["trigger"] == NUDGE else "trigger"
            yield due, _entry("timer", name, "pending", backstop=True, **job.detail)
        elif job.kind in ("trigger", "nudge", "retry"):
            yield due, _entry("timer", job.kind, "pending", **job.detail)


def _glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def render(chat_id: str, entries: list[dict[str, Any]], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(mask(json.dumps({"chat_id": chat_id, "entries": entries}, indent=2)) + "\n")
        return
    out.write(f"chat {chat_id}: {len(entries)} entries\n")
    for e in entries:
        detail = "  ".join(f"{k}={v}" for k, v in e["detail"].items() if k != "organization")
        out.write(mask(f"{e['at']}  {e['type']:<8}  {e['name']:<24}  {e['outcome']:<13}  {detail}".rstrip()) + "\n")
