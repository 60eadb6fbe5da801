"""The dispatch table: which handlers run for each kind of normalised event."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chathooks.events import Event, Kind
from workers.handlers import timeline
from workers.runtime import Runtime


Handler = Callable[[Event, Runtime], None]

HANDLERS: dict[Kind, tuple[Handler, ...]] = {kind: (timeline.record,) for kind in Kind}


def dispatch(events: Iterable[Event], rt: Runtime, table: dict[Kind, tuple[Handler, ...]] = HANDLERS) -> None:
    """Run every handler for every event, in order; handlers are idempotent, so a rerun is safe."""
    for event in events:
        for handler in table.get(event.kind, ()):
            handler(event, rt)
