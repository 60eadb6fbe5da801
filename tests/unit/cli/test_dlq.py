"""``chathooks dlq`` commands over a fakeredis store: durations, filters, the table, show, replay and purge."""

from __future__ import annotations

import io
import json

import pytest

from cli import dlq
from workers.dead_letters import DeadLetters, Filter
from workers.scheduler import Scheduler

AUTHORIZATION = {"service": "livechat", "method": "send_event", "type": "authorization", "status": 403,
                 "message": "injected\nauthorization", "transient": False, "retry_after": None, "at": 1756720805.0}
TIMEOUT = {"type": "ReadTimeout", "message": "read timed out", "transient": True, "at": 1756720801.0}


def event(n: int, kind: str, chat: str) -> dict[str, str]:
    return {"key": f"livechat:{chat}:{n}", "source": "livechat", "kind": kind, "chat_id": chat, "thread_id": "T1"}


@pytest.fixture
def store(settings, fake_redis) -> DeadLetters:
    return DeadLetters(fake_redis, settings.key_prefix)


@pytest.fixture
def ids(store) -> dict[str, str]:
    """A nudge refused in chat C1 after a timeout, a tag refused in chat C2."""
    return {"nudge": store.add(event(1, "silence_deadline", "C1"), "silence.fire", [TIMEOUT, AUTHORIZATION]),
            "tag": store.add(event(2, "chat_ended", "C2"), "tagging.thread_ended", [AUTHORIZATION])}


def run(command, *args):  # type: ignore[no-untyped-def]
    """(exit code, stdout, stderr) of ``command(*args, out, err)``."""
    out, err = io.StringIO(), io.StringIO()
    code = command(*args, out, err)
    return code, out.getvalue(), err.getvalue()


def scheduled(store: DeadLetters, settings) -> list[str]:  # type: ignore[no-untyped-def]
    key = Scheduler(store._redis, settings.key_prefix).key
    return [m.decode() for m in store._redis.zrange(key, 0, -1)]


# --- durations and filters -----------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("0s", 0), ("1.5h", 5400), (" 45s ", 45)])
def test_durations(text, seconds):
    assert dlq.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "5w", "-1s", "s", "1 h", "1h30m", "1e3s"])
def test_anything_else_is_not_a_duration(text):
    with pytest.raises(ValueError, match="30s, 15m, 2h, 7d"):
        dlq.duration(text)


def test_a_selection_turns_older_than_into_a_cutoff():
    assert dlq.selection("h", "k", "C", 60, now=1000.0) == Filter("h", "k", "C", 940.0)
    assert dlq.selection(now=1000.0) == Filter()
    assert dlq.selection(organization="org-1", now=1000.0) == Filter(organization="org-1")


# --- list and show -------------------------------------------------------------------------


def test_list_is_a_table_oldest_first_with_the_last_error_on_one_line(store, ids):
    out = io.StringIO()
    assert dlq.list_items(store, Filter(), False, out) == 0
    header, nudge, tag = out.getvalue().splitlines()
    assert header.split() == ["ID", "DEAD-LETTERED", "HANDLER", "KIND", "CHAT", "ORG", "ATTEMPTS", "LAST", "ERROR"]
    assert nudge.split()[:1] + nudge.split()[2:5] + nudge.split()[6:7] == [
        ids["nudge"], "silence.fire", "silence_deadline", "C1", "2"]
    assert nudge.endswith("livechat send_event authorization (403, final): injected authorization")
    assert tag.split()[0] == ids["tag"] and "tagging.thread_ended" in tag
    assert header.index("HANDLER") == nudge.index("silence.fire") == tag.index("tagging.thread_ended")


def test_list_filters(store, ids):
    out = io.StringIO()
    dlq.list_items(store, Filter(chat="C2"), False, out)
    assert [line.split()[0] for line in out.getvalue().splitlines()[1:]] == [ids["tag"]]


def test_list_says_when_there_is_nothing(store):
    out = io.StringIO()
    assert dlq.list_items(store, Filter(), False, out) == 0
    assert out.getvalue() == "no dead letters\n"


def test_list_as_json_is_every_item_in_full(store, ids):
    out = io.StringIO()
    dlq.list_items(store, Filter(), True, out)
    assert json.loads(out.getvalue()) == store.list()


def test_show_prints_everything(store, ids):
    code, out, err = run(dlq.show, store, ids["nudge"], False)
    assert code == 0 and err == ""
    assert f"id:            {ids['nudge']}" in out
    for line in ("handler:       silence.fire", "kind:          silence_deadline", "chat:          C1",
                 "attempts:      2", "replays:       0", "first failure: 2025-09-01T10:00:01Z",
                 "last failure:  2025-09-01T10:00:05Z",
                 "  1. 2025-09-01T10:00:01Z  ReadTimeout (transient): read timed out",
                 "  2. 2025-09-01T10:00:05Z  livechat send_event authorization (403, final): injected authorization",
                 '    "key": "livechat:C1:1",'):
        assert line in out.splitlines(), line


def test_show_as_json(store, ids):
    code, out, _ = run(dlq.show, store, ids["tag"], True)
    assert code == 0 and json.loads(out) == store.get(ids["tag"])


def test_show_an_unknown_id_is_not_found(store):
    code, out, err = run(dlq.show, store, "f00", False)
    assert (code, out) == (1, "")
    assert err == "chathooks: no dead letter 'f00' (already replayed or purged?)\n"


def test_a_long_error_is_cut_to_one_line(store):
    item_id = store.add(event(3, "rated", "C3"), "rating.react", [{"type": "KeyError", "message": "x" * 500}])
    out = io.StringIO()
    dlq.list_items(store, Filter(), False, out)
    [row] = out.getvalue().splitlines()[1:]
    assert row.startswith(item_id) and row.endswith("x…") and len(row) < 200


# --- replay and purge ----------------------------------------------------------------------


def test_replay_one(store, ids, settings):
    code, out, err = run(dlq.replay, store, ids["tag"])
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"replayed {ids['tag']} (tagging.thread_ended on chat_ended, chat C2)"
    assert [i["id"] for i in store.list()] == [ids["nudge"]]
    assert len(scheduled(store, settings)) == 1

    code, out, err = run(dlq.replay, store, ids["tag"])
    assert (code, out) == (1, "") and "no dead letter" in err
    assert len(scheduled(store, settings)) == 1


def test_replay_every_match(store, ids, settings):
    code, out, _ = run(dlq.replay, store, Filter(handler="silence.fire"))
    assert code == 0 and out.splitlines()[-1].startswith("1 replayed")
    assert [i["id"] for i in store.list()] == [ids["tag"]]
    code, out, _ = run(dlq.replay, store, Filter())
    assert code == 0 and out.splitlines()[-1].startswith("1 replayed")
    assert len(store) == 0 and len(scheduled(store, settings)) == 2


def test_replay_with_nothing_matching_says_so(store, ids, settings):
    code, out, err = run(dlq.replay, store, Filter(chat="nope"))
    assert (code, out, err) == (1, "", "chathooks: no dead letter matched; nothing replayed\n")
    assert len(store) == 2 and scheduled(store, settings) == []


def test_purge_one_and_every_match(store, ids, settings):
    code, out, _ = run(dlq.purge, store, ids["nudge"])
    assert code == 0 and out.splitlines() == [
        f"purged {ids['nudge']} (silence.fire on silence_deadline, chat C1)", "1 purged"]
    assert run(dlq.purge, store, ids["nudge"])[0] == 1
    assert run(dlq.purge, store, Filter(dead_before=0.0))[0] == 1  # nothing that old
    assert run(dlq.purge, store, Filter(dead_before=2e9))[0] == 0
    assert len(store) == 0 and scheduled(store, settings) == []


def test_an_organization_filter_lists_and_replays_only_its_items(store, settings):
    parked = {"type": "tenant_not_installed", "message": "organization org-9 is not installed", "transient": False,
              "at": 1756720801.0}
    mine = store.add(event(3, "message", "C3") | {"organization": "org-9"}, "tenants.deliver", [parked])
    store.add(event(4, "message", "C4") | {"organization": "org-8"}, "tenants.deliver", [parked])
    out = io.StringIO()
    dlq.list_items(store, dlq.selection(organization="org-9"), True, out)
    assert [i["id"] for i in json.loads(out.getvalue())] == [mine]
    code, text, _ = run(dlq.replay, store, dlq.selection(organization="org-9"))
    assert code == 0 and f"replayed {mine}" in text and len(store) == 1
