"""Customer profiles (``chathooks.profiles``): who was in which chat and their ratings, from every source.

Tags reach the profile from ``tagging``, wherever a tag is known to be on a chat.
"""

from __future__ import annotations

from chathooks.events import Event, Kind, epoch
from workers.runtime import Runtime

RATINGS = {1: "good", 0: "bad"}


def seen(event: Event, rt: Runtime) -> None:
    """A chat's start, end or form: the customer was in this chat (by email and/or their platform id)."""
    if not event.chat_id:
        return
    customer = next((u for u in event.users if u.type == "customer"), None)
    customer_id = customer.id if customer else event.author_id if event.kind is Kind.FORM_FILLED else None
    rt.profiles.seen(event.source, event.chat_id, email=event.customer_email, customer_id=customer_id,
                     name=event.customer_name, at=epoch(event.time) or rt.clock())


def rated(event: Event, rt: Runtime) -> None:
    if event.chat_id and event.rating in RATINGS:
        rt.profiles.rated(event.source, event.chat_id, RATINGS[event.rating], epoch(event.time) or rt.clock())

