"""Marketing-list sync: the customer's email and name upserted once per email and list."""

from __future__ import annotations

import hashlib

from chathooks.events import Event, Kind
from workers.runtime import Runtime


def sync(event: Event, rt: Runtime) -> None:
    if rt.settings.mailchimp is None and not rt.outbound.dry_run:
        return  # list sync not configured
    email = (event.customer_email or "").strip()
    if "@" not in email or any(c.isspace() for c in email):
        # The end only looks again for an email a form may have added; the chat's start told of none.
        if event.kind is not Kind.CHAT_ENDED:
            _told(event, rt, "skipped", "no_email")
            rt.journal.count("skipped:no_email")
        return
    list_id = rt.settings.mailchimp.list_id if rt.settings.mailchimp else "dry-run"
    name = event.customer_name
    if name is None and event.chat_id and event.author_id:
        name = rt.state.customer_name(event.chat_id, event.author_id)  # a later form: name from the chat
    digest = hashlib.md5(email.lower().encode()).hexdigest()  # Mailchimp's subscriber hash
    ran, upserted = rt.once.run(f"upsert:{list_id}:{digest}",
                                lambda: rt.outbound.upsert_member(email, name, rt.rules.marketing))
    if upserted or not ran:  # sent now, or done before
        rt.profiles.subscribed(email)
    if not ran:
        rt.journal.count("skipped:already_done")
        _told(event, rt, "skipped", "already_done")
    elif rt.outbound.dry_run:  # counted by the outbound record
        _told(event, rt, "skipped", "dry_run")
    else:
        _told(event, rt, "sent", None)


def _told(event: Event, rt: Runtime, outcome: str, reason: str | None) -> None:
    rt.journal.effect(event.chat_id, event.thread_id, "list_upsert", outcome, source=event.source, reason=reason)
