"""``cli.main.main``: the dlq commands end to end over fakeredis, usage and configuration errors."""

from __future__ import annotations

import json

import fakeredis
import pytest

from chathooks import redis_client
from chathooks.embedded_redis import free_port
from cli.main import main
from workers.dead_letters import DeadLetters
from workers.scheduler import Scheduler, retry_job

PREFIX = "test:cli:"
EVENT = {"key": "livechat:C1:T1:ended", "source": "livechat", "kind": "chat_ended", "chat_id": "C1", "thread_id": "T1"}
ERROR = {"service": "livechat", "method": "tag_thread", "type": "validation", "status": 400, "message": "bad tag",
         "transient": False, "at": 1756720800.0}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "LIVECHAT_ACCOUNT_ID", "LIVECHAT_PAT", "LIVECHAT_API_VERSION",
                 "MAILCHIMP_API_KEY", "MAILCHIMP_LIST_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATHOOKS_KEY_PREFIX", PREFIX)


@pytest.fixture
def store(env, monkeypatch: pytest.MonkeyPatch) -> DeadLetters:
    """The store the CLI sees: its Redis connections go to one fakeredis server."""
    server = fakeredis.FakeServer()
    monkeypatch.setattr(redis_client, "connect", lambda url, timeout, master=None: fakeredis.FakeRedis(server=server))
    return DeadLetters(fakeredis.FakeRedis(server=server), PREFIX)


def test_list_show_replay_purge(store, capsys):
    tag = store.add(EVENT, "tagging.thread_ended", [ERROR])
    nudge = store.add({**EVENT, "key": "k2", "kind": "silence_deadline"}, "silence.fire", [ERROR])

    assert main(["dlq", "list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["ID", tag, nudge]
    assert main(["dlq", "list", "--handler", "silence.fire", "--json"]) == 0
    assert [i["id"] for i in json.loads(capsys.readouterr().out)] == [nudge]
    assert main(["dlq", "show", tag, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["errors"] == [ERROR]

    assert main(["dlq", "replay", tag]) == 0
    assert capsys.readouterr().out.startswith(f"replayed {tag} ")
    schedule = Scheduler(store._redis, PREFIX)
    assert schedule.due_at(retry_job("tagging.thread_ended", EVENT, 1, [], replays=1)) is not None
    assert main(["dlq", "replay", tag]) == 1
    assert capsys.readouterr().err == f"chathooks: no dead letter '{tag}' (already replayed or purged?)\n"

    assert main(["dlq", "purge", "--older-than", "1h"]) == 1  # dead-lettered just now
    capsys.readouterr()
    assert main(["dlq", "purge", "--older-than", "0s", "--kind", "silence_deadline"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 purged"
    assert len(store) == 0
    assert main(["dlq", "show", nudge]) == 1


def test_replay_all_with_filters(store, capsys):
    a = store.add(EVENT, "tagging.thread_ended", [ERROR])
    store.add({**EVENT, "key": "k2", "chat_id": "C2"}, "tagging.thread_ended", [ERROR])
    assert main(["dlq", "replay", "--all", "--chat", "C1", "--handler", "tagging.thread_ended"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"replayed {a} ")
    assert len(store) == 1
    assert main(["dlq", "replay", "--all", "--chat", "C1"]) == 1
    assert main(["dlq", "replay", "--all"]) == 0
    assert len(store) == 0


@pytest.mark.parametrize("argv, message", [
    (["dlq", "replay"], "chathooks dlq replay: give an ID, --org ORG, or --all"),
    (["dlq", "replay", "abc", "--all"], "chathooks dlq replay: give an ID or filters, not both"),
    (["dlq", "replay", "abc", "--chat", "C1"], "chathooks dlq replay: give an ID or filters, not both"),
    (["dlq", "purge"], "chathooks dlq purge: give an ID or --older-than DURATION"),
    (["dlq", "purge", "abc", "--older-than", "1d"], "chathooks dlq purge: give an ID or filters, not both"),
    (["dlq", "list", "--older-than", "5 weeks"], "chathooks dlq list: invalid duration '5 weeks'"),
    (["dlq", "show"], "chathooks dlq show: the following arguments are required: id"),
    (["dlq", "list", "--colour"], "chathooks: unrecognized arguments: --colour"),
    (["dlq"], "chathooks dlq: the following arguments are required: COMMAND"),
])
def test_usage_errors_are_one_line_and_exit_2(store, capsys, argv, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(message) and err.endswith("--help)\n") and err.count("\n") == 1, err


def test_a_configuration_error_is_one_line_and_exit_2(env, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "http://user:hunter2@localhost/0")
    assert main(["dlq", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chathooks: configuration error: REDIS_URL") and err.count("\n") == 1
    assert "hunter2" not in err


def test_an_unreachable_redis_is_one_line_without_the_password(env, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    assert main(["dlq", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chathooks: cannot use the Redis at REDIS_URL:") and err.count("\n") == 1
    assert "hunter2" not in err


def test_chat_tells_a_known_chat_and_exits_1_for_an_unknown_one(store, capsys):
    client = store._redis
    entry = {"type": "delivery", "id": "d1", "source": "livechat", "action": "incoming_chat", "outcome": "queued",
             "handlers": ["timeline.record"], "finished": 1756720800.5}
    client.zadd(f"{PREFIX}timeline:C1", {json.dumps(entry): 1756720800.0})
    assert main(["chat", "C1", "--json"]) == 0
    told = json.loads(capsys.readouterr().out)
    assert [(e["type"], e["name"], e["outcome"]) for e in told["entries"]] == [
        ("delivery", "incoming_chat", "queued"), ("handler", "timeline.record", "done")]
    assert told["entries"][0]["at"] == "2025-09-01T10:00:00.000Z"
    assert main(["chat", "C2"]) == 1
    assert "nothing is known of chat C2" in capsys.readouterr().err
