"""Triggers: each event re-evaluates its thread's triggers; a time-dependent one is evaluated again
at the moment it can turn (a job in the scheduler, claimed by beat's tick), never by polling.

A trigger fires its actions once per window: its window is spent when it fires and reopens at
an evaluation that finds its condition false (``repeat: once``: never). The firing and the
next evaluation's moment are decided together, on the state as read (see ``trigger_state``).
A fired window's actions run at once, as their own handler (``act``: retried and dead-lettered
on their own, each action once-guarded); a backstop job runs them if the worker is lost first.
The agent-silence nudge is the first of them (``chathooks.triggers.rules.nudge_trigger``).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from functools import partial

from chathooks.events import Event, Kind, Role, epoch
from chathooks.platforms.base import ChatRef
from chathooks.platforms.registry import DEFAULT_SOURCE
from chathooks.triggers.rules import NUDGE
from workers.handlers.people import send_as_bot_while_active
from workers.handlers.tagging import tag_once
from workers.once import Busy
from workers.retry import attempts
from workers.runtime import Runtime
from workers.scheduler import LEASE_SECONDS, job, parse
from workers.trigger_state import LOOK_UP, ROLES, Change, RoleUnknown

log = logging.getLogger(__name__)

ACT = "triggers.act"
MAX_RACES = 8  # evaluations that lose the state to a concurrent one before the handler is retried
# What the platforms send of a chat: LHC's chat fields, and whatever extra fields a template adds.
_ATTRIBUTE_PARTS = ("chat", "attributes")


def observe(event: Event, rt: Runtime) -> None:
    """Fold ``event`` into its thread's state, then evaluate the thread's triggers."""
    if not rt.rules.firing or not (event.chat_id and event.thread_id):
        return
    try:
        _observe(event, rt, rt.evident_role(event), look_up=True)
    except RoleUnknown:  # not in what we remember of the chat: the platform may tell (nothing was changed)
        _observe(event, rt, rt.author_role(event))


def _observe(event: Event, rt: Runtime, role: Role | None, *, look_up: bool = False) -> None:
    change = _change(event, rt, role, look_up=look_up)
    if change is not None:
        evaluate(rt, ChatRef.of(event), change, found=partial(rt.found_role, event) if look_up else None)


def due(event: Event, rt: Runtime) -> None:
    """A scheduled moment has come: evaluate the thread as it is, at that moment at the earliest.

    (A worker's clock a little behind the tick's must not find the moment not yet come, and drop it.)
    """
    if rt.rules.firing and event.chat_id and event.thread_id:
        due_at = event.raw["due"]
        consumed = due_job(event.chat_id, event.thread_id, due_at)
        fired = evaluate(rt, ChatRef.of(event), None, at=float(due_at), consumed=consumed)
        rt.journal.late("nudge" if NUDGE in fired else "trigger", float(due_at), rt.clock())


def due_event(chat_id: str, thread_id: str, due_at: str) -> Event:
    """The internal event a due job becomes, so it runs with the handlers' retries."""
    return Event(key=f"chathooks:{thread_id}:trigger:{due_at}", source="chathooks", kind=Kind.TRIGGER_DUE,
                 chat_id=chat_id, thread_id=thread_id, raw={"due": due_at})


def due_job(chat_id: str, thread_id: str, due_at: str) -> str:
    """The job that evaluates a thread at ``due_at`` (``f"{moment:.6f}"``)."""
    return job("trigger", chat_id, thread_id, due_at)


def fired_event(source: str, organization: str, chat_id: str, thread_id: str, trigger: str, window: str) -> Event:
    """A window fired: the event its actions run on (``act``); the chat's platform and organization with it."""
    return Event(key=f"chathooks:{thread_id}:fired:{trigger}:{window}", source="chathooks", kind=Kind.TRIGGER_FIRED,
                 organization=organization or None, chat_id=chat_id, thread_id=thread_id,
                 raw={"trigger": trigger, "window": int(window), "platform": source, "organization": organization})


def fire_jobs(chat: ChatRef) -> str:
    """The prefix of a fired window's backstop job, ``trigger|window`` to follow (see ``fired_event``)."""
    return job("fire", chat.source, chat.organization or "", chat.chat_id, chat.thread_id or "", "")


def evaluate(rt: Runtime, chat: ChatRef, change: Change | None, *, at: float = 0.0, consumed: str = "",
             found: Callable[[Role], None] | None = None) -> list[str]:
    """Apply ``change``, evaluate every trigger on the state, decide, and run what fired; returns the triggers
    that fired.

    ``at``: evaluate no earlier than this; ``consumed``: the scheduled job this evaluation is (it is done);
    ``found``: told the role the state's script looked up for ``change`` (LOOK_UP).
    """
    # Imported here: dispatch imports this module for its table.
    from workers.dispatch import run_handler

    firing, thread = rt.rules.firing, chat.thread_id
    assert thread
    tags_key = rt.state.tags_key(thread, "applied")
    for _ in range(MAX_RACES):
        snap = rt.triggers.observe(thread, change, source=chat.source, organization=chat.organization,
                                   chat_id=chat.chat_id, tags_key=tags_key, roles_key=rt.state.roles_key(chat.chat_id),
                                   read_tags=firing.reads_tags)
        change = None  # applied: a race only re-reads
        if snap is None:
            return []
        if found is not None and snap.role is not None:
            found(snap.role)
            found = None
        now, view, spent, fired_before = max(rt.clock(), at), snap.view, snap.spent, snap.fired
        verdicts: dict[str, str] = {}
        turns: float | None = None
        for name, once, check in firing.checks:
            if once and fired_before.get(name):
                continue  # once per thread: done with
            holds, turns_at = check(view, now)
            if holds != (name in spent):
                verdicts[name] = "fire" if holds else "reopen"
            if turns_at is not None and (turns is None or turns_at < turns):
                turns = turns_at
        if turns is not None and turns > now + snap.ttl:
            turns = None  # the state expires first: nothing would be left to evaluate then
        if turns is not None:
            turns = math.ceil(turns * 1e6) / 1e6  # to the microsecond, never before the moment
        next_job = due_job(snap.chat_id, thread, f"{turns:.6f}") if turns is not None else ""
        if not verdicts and _scheduled_in_time(snap.job, consumed, turns):
            return []
        if not verdicts and not consumed:
            # Only the next moment moves: written with the task's flush, if the state is still as read. When it
            # is not, whoever changed it evaluated the newer state and scheduled what that needs.
            rt.journal.later(partial(rt.triggers.schedule, thread, snap.version, next_job, turns))
            return []
        here = ChatRef(snap.source or chat.source, snap.chat_id or chat.chat_id, thread, snap.organization)
        prefix = fire_jobs(here)
        fired = rt.triggers.decide(thread, snap.version, verdicts, next_job, turns, prefix, now + LEASE_SECONDS)
        if fired is None:
            continue  # another worker changed the thread meanwhile: evaluate again on its state
        for name, window in fired:
            member = f"{prefix}{name}|{window}"
            rt.journal.add(here.chat_id, thread, now, {"type": "timer", "name": "nudge" if name == NUDGE else "trigger",
                                                       "outcome": "fired", "trigger": name, "window": window})
            run_handler(ACT, fired_event(*parse(member)[1]), rt, job=member)
            # With the task's other writes: lost before them, the backstop runs the (once-guarded) actions again.
            rt.journal.later(partial(rt.scheduler.complete, member))
        return [name for name, _ in fired]
    raise Busy(f"triggers of thread {thread}")


def _scheduled_in_time(scheduled: str, consumed: str, turns: float | None) -> bool:
    """Whether the job already scheduled will do: none is needed and none is there, or it comes no later
    than the next moment.

    An early one only evaluates once more and schedules the next, which costs less than moving the job
    on every message (each customer message moves its clocks' moments later).
    """
    live = "" if scheduled == consumed else scheduled
    if turns is None:
        return not live
    return bool(live) and float(live.rpartition("|")[2]) <= turns


def act(event: Event, rt: Runtime) -> None:
    """A fired window's actions, each once: a message by the bot, a tag."""
    name, window, thread = event.raw["trigger"], event.raw["window"], event.thread_id
    trigger = next((t for t in rt.rules.firing.triggers if t.name == name), None)
    if trigger is None or not thread:
        log.warning("trigger %r fired on thread %s is no longer in the rules: nothing done", name, thread)
        return
    chat = ChatRef(event.raw["platform"], event.chat_id, thread, event.raw["organization"] or None)  # type: ignore[arg-type]
    log.info("trigger %r fired on %s chat %s (window %d)", name, chat.source, chat.chat_id, window)
    effects = []
    for i, action in enumerate(trigger.actions):
        if action.kind == "message":
            effects.append(partial(send_as_bot_while_active, rt, chat, f"{name}:{thread}:{window}:{i}", action.value))
        else:
            effects.append(partial(tag_once, rt, chat, action.value))
    attempts(*effects)


def _change(event: Event, rt: Runtime, role: Role | None, *, look_up: bool = False) -> Change | None:
    """What ``event`` changes; with ``look_up``, a message's author of ``role`` None is looked up with the state
    (LOOK_UP)."""
    at = epoch(event.time) or rt.clock()
    fields = _fields(event, rt)
    if event.kind is Kind.MESSAGE:
        look_up = look_up and role is None and event.author_id is not None and bool(event.chat_id)
        code = LOOK_UP if look_up else ROLES[role.value] if role in (Role.CUSTOMER, Role.AGENT, Role.BOT) else None
        if code is None:
            return Change("seen", at, fields=fields) if fields else None
        # A looked-up author's facts too: the state keeps them only for a customer's message.
        facts = tuple(rt.rules.firing.message_facts(event.text or "")) if code in ("c", LOOK_UP) else ()
        digest = hashlib.blake2b(event.key.encode(), digest_size=6).hexdigest()
        return Change("msg", at, code, digest, facts, fields, author=(event.author_id or "") if look_up else "")
    op = {Kind.CHAT_STARTED: "start", Kind.CHAT_ENDED: "end", Kind.CUSTOMER_LEFT: "left"}.get(event.kind, "seen")
    return Change(op, at, fields=fields)


def _fields(event: Event, rt: Runtime) -> dict[str, str]:
    fields: dict[str, str] = {}
    if event.customer_email:
        fields["email"] = event.customer_email.strip().lower()
    if event.kind is Kind.RATED and event.rating is not None:
        fields["rating"] = str(event.rating)
    elif event.kind is Kind.RATING_CANCELLED:
        fields["rating"] = ""
    wanted = rt.rules.firing.attributes
    if wanted:
        for part in _ATTRIBUTE_PARTS:
            sent = event.raw.get(part)
            if isinstance(sent, dict):
                fields.update({f"a:{k}": str(v) for k, v in sent.items()
                               if k in wanted and isinstance(v, str | int | float) and not isinstance(v, bool)})
    return fields


# --- the previous release's silence windows -------------------------------------------------------

def previous_deadline(chat_id: str, thread_id: str, start: str) -> Event:
    """A nudge deadline the previous release scheduled (or dead-lettered) for a window opened at ``start``."""
    return Event(key=f"chathooks:{thread_id}:nudge:{start}", source="chathooks", kind=Kind.SILENCE_DEADLINE,
                 chat_id=chat_id, thread_id=thread_id, raw={"window_start": start})


def previous_nudge(event: Event, rt: Runtime) -> None:
    """Nudge a window the previous release opened, once, if it is still open: chats open across an upgrade."""
    nudge, start = rt.rules.nudge, event.raw.get("window_start", "")
    key = f"{rt.settings.key_prefix}silence:{event.thread_id}"
    window = rt.redis.hgetall(key)
    if nudge is None or b"ended" in window or b"nudged" in window or window.get(b"start") != start.encode():
        return
    organization = window.get(b"organization", b"").decode() or None
    source = window.get(b"source", DEFAULT_SOURCE.encode()).decode()
    chat = ChatRef(source, event.chat_id, event.thread_id, organization)  # type: ignore[arg-type]
    # The previous release's once name.
    send_as_bot_while_active(rt, chat, f"nudge:{event.thread_id}:{start}", nudge.message)
    rt.redis.hset(key, "nudged", "1")

