"""``chathooks dlq``: list, show, replay and purge the dead-letter store.

Each command returns its exit code: 0 done, 1 no such item or nothing matched (``list`` excepted:
an empty list is an answer).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TextIO

from cli.output import dump, table, when
from workers.dead_letters import EVERYTHING, DeadLetters, Filter, Item

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_COLUMNS = ("ID", "DEAD-LETTERED", "HANDLER", "KIND", "CHAT", "ORG", "ATTEMPTS", "LAST ERROR")


def duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``2h`` or ``7d``; ValueError for anything else."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"invalid duration {text!r} (a number and s, m, h or d: 30s, 15m, 2h, 7d)")
    return float(found[1]) * _SECONDS[found[2]]


def selection(handler: str | None = None, kind: str | None = None, chat: str | None = None,
              older_than: float | None = None, now: float | None = None, organization: str | None = None) -> Filter:
    """The items an operator's filters mean; ``older_than`` is seconds since they were dead-lettered."""
    now = time.time() if now is None else now
    return Filter(handler, kind, chat, None if older_than is None else now - older_than, organization)


def list_items(store: DeadLetters, match: Filter, as_json: bool, out: TextIO) -> int:
    items = store.list(match)
    if as_json:
        dump(items, out)
    elif items:
        table(_COLUMNS, [_row(item) for item in items], out)
    else:
        out.write("no dead letters\n")
    return 0


def show(store: DeadLetters, item_id: str, as_json: bool, out: TextIO, err: TextIO) -> int:
    item = store.get(item_id)
    if item is None:
        return _not_found(item_id, err)
    if as_json:
        dump(item, out)
        return 0
    event = item["event"]
    fields = [
        ("id", item["id"]), ("handler", item["handler"]), ("event", event.get("key")),
        ("kind", event.get("kind")), ("chat", event.get("chat_id")), ("thread", event.get("thread_id")),
        ("attempts", item["attempts"]), ("replays", item["replays"]),
        ("first failure", when(item["first_failed_at"])), ("last failure", when(item["last_failed_at"])),
        ("dead-lettered", when(item["dead_at"])),
    ]
    for name, value in fields:
        out.write(f"{name + ':':<15}{'-' if value is None else value}\n")
    out.write("errors:\n")
    for n, error in enumerate(item["errors"], 1):
        out.write(f"  {n}. {when(error['at'])}  {_error_line(error)}\n")
    out.write("event data:\n")
    for line in json.dumps(event, indent=2, sort_keys=True).splitlines():
        out.write(f"  {line}\n")
    return 0


def replay(store: DeadLetters, target: str | Filter, out: TextIO, err: TextIO) -> int:
    """Replay one item by id, or every item matching a filter."""
    return _take(store, store.replay, target, "replayed", out, err,
                 note=" (scheduled now: a worker runs it at beat's next tick, or once they run)")


def purge(store: DeadLetters, target: str | Filter, out: TextIO, err: TextIO) -> int:
    """Delete one item by id, or every item matching a filter."""
    return _take(store, store.purge, target, "purged", out, err)


def _take(store: DeadLetters, take: Callable[[str, Filter], Item | None], target: str | Filter, verb: str,
          out: TextIO, err: TextIO, note: str = "") -> int:
    if isinstance(target, str):
        item = take(target, EVERYTHING)
        if item is None:
            return _not_found(target, err)
        done = [item]
    else:
        # Each item is taken on its own and only if it still matches: another operator may be at it too.
        done = [item for item in store.list(target) if take(item["id"], target) is not None]
        if not done:
            err.write(f"chathooks: no dead letter matched; nothing {verb}\n")
            return 1
    for item in done:
        event = item["event"]
        out.write(f"{verb} {item['id']} ({item['handler']} on {event['kind']}, chat {event.get('chat_id') or '-'})\n")
    out.write(f"{len(done)} {verb}{note}\n")
    return 0


def _not_found(item_id: str, err: TextIO) -> int:
    err.write(f"chathooks: no dead letter {item_id!r} (already replayed or purged?)\n")
    return 1


def _row(item: Item) -> tuple[str, ...]:
    event = item["event"]
    errors = item["errors"]
    return (item["id"], when(item["dead_at"]), item["handler"], event["kind"], event.get("chat_id") or "-",
            event.get("organization") or "-", str(item["attempts"]), _error_line(errors[-1]) if errors else "-")


def _error_line(error: dict[str, Any], width: int = 100) -> str:
    """``livechat send_event authorization (403, final): message``, on one line."""
    where = " ".join(str(error[k]) for k in ("service", "method") if error.get(k))
    status = f"{error['status']}, " if error.get("status") else ""
    final = "transient" if error.get("transient") else "final"
    line = f"{where + ' ' if where else ''}{error.get('type', '?')} ({status}{final}): {error.get('message', '')}"
    line = " ".join(line.split())
    return line if len(line) <= width else line[:width - 1] + "…"
