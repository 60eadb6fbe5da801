"""End to end: triggers on Live Helper Chat, through the real ingress, Redis, a Celery worker and beat.

LHC's documented continuous-webhook examples, written as triggers (tests/fixtures/rules/triggers.yaml
with shorter times): hello / are you there and nobody answered; the customer wrote twice in a row;
a bot chat whose customer has had no reply. Each fires exactly once at the moment it becomes true
(on LHC's whole-second clock), a further message within the window fires nothing, an agent's reply
reopens the window; every delivery comes twice, and shuffled within each burst; a worker restarted
between the moment being scheduled and its coming fires it once.
"""

from __future__ import annotations

import copy
import json
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.lhc import FakeLhc, form
from tests.helpers import FIXTURES, fixture, wait_for
from tests.integration.processes import Process, start_worker
from tests.integration.system import SHUFFLE_SEED, System, launched

pytestmark = pytest.mark.integration

TOKEN = "lhc-triggers-bearer"
HELLO_AFTER, BOT_AFTER = 4, 6  # seconds: LHC's examples say 25 and 60
SUBJECTS = {"waiting": 4}


def rules_file(path: Path) -> Path:
    rules = yaml.safe_load((FIXTURES / "rules" / "triggers.yaml").read_text())
    hello, twice, bot, _ = rules["triggers"]  # long-chat's moment is 15 minutes away: left out
    hello["when"][1]["value"] = HELLO_AFTER
    bot["when"][1]["expr"] = f"now - attributes.last_user_msg_time >= {BOT_AFTER}"
    path.write_text(json.dumps({"triggers": [hello, twice, bot], "lhc": {"subjects": SUBJECTS}}))
    return path


HELLO, TWICE, BOT = (t["actions"][0]["message"]
                     for t in yaml.safe_load((FIXTURES / "rules" / "triggers.yaml").read_text())["triggers"][:3])


class Chat:
    """One LHC chat's hook calls (built from the fixtures), its messages stored in FakeLhc as LHC does."""

    ids = iter(range(600_001, 700_000))

    def __init__(self, lhc: FakeLhc, chat_id: int, status: int = 1) -> None:
        self.lhc, self.id, self.status, self.t0 = lhc, chat_id, status, int(time.time())
        self.last_user_msg_time = 0
        lhc.seed_chat({"id": chat_id, "status": status, "iwh_id": 0, "nick": "Ada", "email": "", "time": self.t0})

    def _say(self, hook: str, text: str, user_id: int) -> dict[str, Any]:
        at = int(time.time())
        if user_id == 0:
            self.last_user_msg_time = at
        msg = {"id": next(self.ids), "msg": text, "user_id": user_id, "time": at, "meta_msg": "",
               "name_support": "Agent Smith" if user_id > 0 else ""}
        self.lhc.add_message(self.id, msg)
        body = copy.deepcopy(fixture(hook, "lhc"))
        body["chat"].update(id=self.id, time=self.t0, status=self.status, email="", user_id=0,
                            last_user_msg_time=self.last_user_msg_time)
        body["msg"].update(msg)
        return body

    def customer(self, text: str) -> dict[str, Any]:
        return self._say("chat_addmsguser", text, 0)

    def agent(self, text: str) -> dict[str, Any]:
        return self._say("chat_web_add_msg_admin", text, 7)

    def echo(self, text: str) -> dict[str, Any]:
        """Our bot's message as LHC's chat.web_add_msg_admin hook reports it back (user_id −2)."""
        (stored,) = [m for m in self.lhc.messages[self.id] if m["user_id"] == "-2" and m["msg"] == text][-1:]
        body = copy.deepcopy(fixture("chat_web_add_msg_admin.bot", "lhc"))
        body["chat"].update(id=self.id, time=self.t0, status=self.status, last_user_msg_time=self.last_user_msg_time)
        body["msg"].update({**stored, "id": int(stored["id"]), "user_id": -2, "time": int(stored["time"])})
        return body

    def bot_messages(self, text: str | None = None) -> list[float]:
        """When FakeLhc received our bot's messages into this chat (by text)."""
        calls = [(c.time, form(c)) for c in self.lhc.calls("addmsgadmin")]
        return [at for at, f in calls if f.get("sender") == "bot" and f.get("chat_id") == str(self.id)
                and (text is None or f.get("msg") == text)]


@pytest.fixture
def launch(pipeline_env: dict[str, str], processes: list[Process], tmp_path: Path,
           request: pytest.FixtureRequest) -> Iterator[Callable[[], tuple[System, FakeLhc]]]:
    with launched(request) as (systems, fakes):
        def launch() -> tuple[System, FakeLhc]:
            lhc = FakeLhc().start()
            fakes.append(lhc)
            api = lhc.settings()
            system = System({**pipeline_env, "CHATHOOKS_RULES": str(rules_file(tmp_path / "rules.json")),
                             "CHATHOOKS_DRY_RUN": "0", "LHC_WEBHOOK_SECRETS": TOKEN, "LHC_API_URL": api.api_url,
                             "LHC_API_USER": api.api_user, "LHC_API_KEY": api.api_key}, tmp_path, processes)
            system.http.headers["Authorization"] = f"Bearer {TOKEN}"
            systems.append(system)
            return system, lhc

        yield launch


def twice(system: System, *bodies: dict[str, Any], rng: random.Random | None = None) -> None:
    """Post every body twice (shuffled when ``rng`` is given): each is queued once, its repeat a duplicate."""
    deliveries = [b for b in bodies for _ in range(2)]
    if rng is not None:
        rng.shuffle(deliveries)
    statuses = []
    for body in deliveries:
        response = system.http.post(f"{system.url}/webhooks/lhc", json=body, timeout=10)
        assert response.status_code == 204, (response.status_code, response.text)
        statuses.append(response.headers["X-Chathooks-Status"])
    assert sorted(statuses) == ["duplicate"] * len(bodies) + ["queued"] * len(bodies), statuses


def assert_in_time(times: list[float], becomes_true: int) -> None:
    """Exactly one, no earlier than the moment (on LHC's whole-second clock) and at most 2 s after it."""
    assert len(times) == 1, times
    print(f"fired {times[0] - becomes_true:+.3f}s after the condition became true")
    assert becomes_true <= times[0] <= becomes_true + 2.0, times[0] - becomes_true


def test_lhcs_examples_fire_once_each_at_the_right_moment(launch):
    system, lhc = launch()
    rng = random.Random(SHUFFLE_SEED)
    hello, row, bot = Chat(lhc, 8101), Chat(lhc, 8102), Chat(lhc, 8103, status=5)

    # Twice in a row: on the second message, at once. The bodies of one burst are shuffled.
    twice(system, row.customer("Good morning"), row.customer("I need help with my order"), rng=rng)
    wait_for(lambda: row.bot_messages(TWICE), timeout=5, what="twice-in-a-row's message")
    # Hello and the bot chat start their clocks.
    twice(system, hello.customer("Hello, anyone?"))
    hello_true = hello.last_user_msg_time + HELLO_AFTER
    twice(system, bot.customer("I have a question"))
    bot_true = bot.last_user_msg_time + BOT_AFTER
    wait_for(lambda: len(lhc.subjects[row.id]) == 1, timeout=5, what="the waiting subject")
    twice(system, row.echo(TWICE), row.customer("Still there?"))  # a third message in the window: nothing

    wait_for(lambda: hello.bot_messages(HELLO), timeout=HELLO_AFTER + 6, what="hello-no-reply's message")
    assert_in_time(hello.bot_messages(HELLO), hello_true)
    twice(system, hello.echo(HELLO))
    wait_for(lambda: bot.bot_messages(BOT), timeout=BOT_AFTER + 6, what="bot-no-reply's message")
    assert_in_time(bot.bot_messages(BOT), bot_true)
    # repeat: once — never again in this thread. (The customer has now written twice in a row: the bot's
    # message between counts for nothing.)
    twice(system, bot.echo(BOT), bot.customer("Still nobody?"))

    # An agent's reply reopens the windows: twice in a row fires again, hello again 4 s after a new hello.
    twice(system, row.agent("On it!"), hello.agent("Hi, how can I help?"))
    time.sleep(1)  # LHC's clock has whole seconds: the customer's next words come after the reply's second
    twice(system, row.customer("Thanks"), row.customer("One more thing"), rng=rng)
    twice(system, hello.customer("hello again"))
    again = hello.last_user_msg_time + HELLO_AFTER
    wait_for(lambda: len(hello.bot_messages(HELLO)) == 2, timeout=HELLO_AFTER + 6, what="the second hello")
    assert_in_time(hello.bot_messages(HELLO)[1:], again)
    time.sleep(BOT_AFTER + 1.5)  # long enough for anything else to have fired
    system.settle()

    assert len(row.bot_messages(TWICE)) == 2 and lhc.subjects[row.id] == [SUBJECTS["waiting"]]
    assert len(hello.bot_messages()) == 2 and len(bot.bot_messages(BOT)) == 1 and len(bot.bot_messages(TWICE)) == 1
    assert row.bot_messages(HELLO) == [] and bot.bot_messages(HELLO) == [] and hello.bot_messages(TWICE) == []
    assert system.dead_letters() == [] and not lhc.errors


def test_a_worker_restarted_between_scheduling_and_the_moment_fires_it_once(launch, processes, tmp_path):
    system, lhc = launch()
    hello = Chat(lhc, 8201)
    twice(system, hello.customer("are you there?"))
    becomes_true = hello.last_user_msg_time + HELLO_AFTER
    wait_for(lambda: any(m.startswith("trigger|") for m, _ in system.schedule()), timeout=5,
             what="the moment scheduled")
    assert [s for m, s in system.schedule() if m.startswith("trigger|")] == [becomes_true]

    system.worker.signal(signal.SIGTERM)
    system.worker.proc.wait(15)
    processes.append(start_worker(system.env, tmp_path, name="worker-2"))
    wait_for(lambda: hello.bot_messages(HELLO), timeout=HELLO_AFTER + 8, what="the message")
    time.sleep(1.5)  # another tick or two: still one
    system.settle()
    assert len(hello.bot_messages(HELLO)) == 1
    if time.time() - 2 < becomes_true + 2:  # the replacement started in time: the moment was kept too
        assert_in_time(hello.bot_messages(HELLO), becomes_true)
    assert system.dead_letters() == []
