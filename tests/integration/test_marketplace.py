"""Many LiveChat licenses from one deployment, end to end (SPEC §11): real gunicorn, Celery worker and beat on
the real Redis; FakeAccounts and FakeLiveChat (with organizations) on loopback.

One system serves the whole module, as one deployment serves every license: each test installs its own
organizations through the real routes (App Webhook, then the Direct installation URL) and drives their chats.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet

from cli.main import main as cli
from tests.fakes.accounts import FakeAccounts
from tests.fakes.livechat import FakeLiveChat
from tests.fakes.mailchimp import FakeMailchimp
from tests.helpers import SECRET, fixture, wait_for
from tests.integration.conversation import Conversation, Step
from tests.integration.processes import Process
from tests.integration.system import BAD, BAD_TAG, NUDGE, OPENING, System, automation_env, metric, mirror, write_rules
from tests.integration.test_secrets import redis_dump

pytestmark = pytest.mark.integration

CLIENT_SECRET = "clsec-Vb8c4n4ry-app"
APP_TOKEN = "apphook-Nd3c4n4ry"
SECRET_KEY = Fernet.generate_key().decode()
PUBLIC_URL = "https://hooks.example.test"
AFTER = 3  # seconds of silence before the nudge
OPENING_TAGS = {"refund", "order-status"}


class Deployment:
    """The running system, its fakes, and how a license installs and talks to it."""

    def __init__(self, system: System, lc: FakeLiveChat, accounts: FakeAccounts, env: dict[str, str]) -> None:
        self.system, self.lc, self.accounts, self.env = system, lc, accounts, env
        self.prefix = env["CHATHOOKS_KEY_PREFIX"]
        self.redis = system.redis

    def app_webhook(self, event: str, org: str, license_id: int) -> requests.Response:
        body = fixture(event, "livechat_app") | {"organizationID": org, "licenseID": license_id}
        return self.system.http.post(f"{self.system.url}/livechat/app-webhooks/{APP_TOKEN}", json=body, timeout=10)

    def callback(self, org: str) -> requests.Response:
        code = self.accounts.authorize(org, redirect_uri=f"{PUBLIC_URL}/livechat/callback")
        return self.system.http.get(f"{self.system.url}/livechat/callback", params={"code": code}, timeout=10)

    def install(self, org: str, license_id: int) -> str:
        """Install the app on a license as LiveChat does; returns the organization's bot once it is active."""
        assert self.app_webhook("application_installed", org, license_id).json() == {"status": "handled"}
        page = self.callback(org)
        assert page.status_code == 200 and "installed" in page.text, page.text
        wait_for(lambda: self.status(org) == "active", what=f"{org} provisioned")
        (bot,) = self.lc.bots_of(org)
        return bot["id"]

    def status(self, org: str) -> str | None:
        raw = self.redis.hget(f"{self.prefix}tenant:{org}", "status")
        return raw.decode() if raw else None

    def happen(self, conv: Conversation, org: str, step: Step) -> str:
        """LiveChat's state changes in the organization first, then its webhook arrives."""
        if conv.created_at is not None:
            if conv.chat_id not in self.lc.chats:
                self.lc.seed_chat(conv.chat(), organization=org)
            mirror(self.lc, conv, step)
        body = copy.deepcopy(step.body) | {"organization_id": org}
        response = self.system.http.post(f"{self.system.url}/webhooks/livechat", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["status"]

    def start_chat(self, org: str, bot_id: str) -> Conversation:
        conv = Conversation("3.6", bot_id=bot_id)
        # The same bot's status, told again within a few minutes, is a duplicate: known already.
        assert self.happen(conv, org, conv.routing_status("accepting_chats")) in ("queued", "duplicate")
        assert self.happen(conv, org, conv.start(time.time(), OPENING)) == "queued"
        return conv

    def end_chat(self, conv: Conversation, org: str, tags: set[str] = OPENING_TAGS) -> None:
        """The agent closes the chat: its matched tags are applied."""
        assert self.happen(conv, org, conv.deactivated()) == "queued"
        wait_for(lambda: set(self.tags(conv)) == tags, what=f"{org}'s chat tagged")

    def calls(self, method: str, chat_id: str) -> list[Any]:
        return [r for r in self.lc.calls(method) if (r.json or {}).get("chat_id") == chat_id]

    def acting_org(self, request: Any) -> str | None:
        """The organization the call's credentials act in (None: a token no longer valid anywhere)."""
        return self.lc.organization_of_token(request.headers["Authorization"].removeprefix("Bearer "))

    def said(self, conv: Conversation, text: str) -> list[dict[str, Any]]:
        """The events of the chat with ``text`` (what our bot posted, as LiveChat keeps it)."""
        with self.lc.lock:
            events = list(self.lc.chats[conv.chat_id]["thread"]["events"])
        return [e for e in events if e.get("text") == text]

    def nudges(self, conv: Conversation) -> list[dict[str, Any]]:
        return self.said(conv, NUDGE)

    def tags(self, conv: Conversation) -> list[str]:
        return list(self.lc.chat(conv.chat_id)["thread"].get("tags") or [])

    def dead_letters(self, org: str) -> list[dict[str, Any]]:
        items = [json.loads(v) for v in self.redis.hvals(f"{self.prefix}dlq:items")]
        return [i for i in items if i["event"].get("organization") == org]


@pytest.fixture(scope="module")
def deployment(redis_url: str, tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("marketplace")
    prefix = f"it:{uuid.uuid4().hex[:8]}:"
    base = {"REDIS_URL": redis_url, "CHATHOOKS_KEY_PREFIX": prefix, "CHATHOOKS_QUEUE": f"{prefix}events",
            "LIVECHAT_WEBHOOK_SECRETS": SECRET}
    lc, mc = FakeLiveChat("3.6").start(), FakeMailchimp().start()
    accounts = FakeAccounts(lc.client_id, CLIENT_SECRET, livechat=lc).start()
    env = automation_env(base, lc, mc, write_rules(tmp / "rules.json", AFTER)) | {
        # No single-license credentials: every organization is a tenant.
        "LIVECHAT_ACCOUNT_ID": "", "LIVECHAT_PAT": "", "LIVECHAT_BOT_ID": "", "LIVECHAT_BOT_SECRET": "",
        "LIVECHAT_ORGANIZATION_ID": "",
        "LIVECHAT_CLIENT_ID": lc.client_id, "LIVECHAT_CLIENT_SECRET": CLIENT_SECRET,
        "CHATHOOKS_PUBLIC_URL": PUBLIC_URL, "LIVECHAT_ACCOUNTS_URL": accounts.url,
        "LIVECHAT_APP_WEBHOOK_TOKEN": APP_TOKEN, "CHATHOOKS_SECRET_KEY": SECRET_KEY,
        "CHATHOOKS_RETRY_BASE": "0.5",
    }
    processes: list[Process] = []
    failed_before = request.session.testsfailed
    try:
        system = System(env, tmp, processes)
        yield Deployment(system, lc, accounts, env)
        if request.session.testsfailed > failed_before:
            print(system.logs())
    finally:
        for proc in processes:
            proc.stop()
        for fake in (lc, mc, accounts):
            fake.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def test_two_organizations_are_each_served_with_their_own_credentials_and_bot(deployment: Deployment):
    d = deployment
    d.lc.set_license_webhooks("org-blue", False)  # it once disabled them: provisioning turns them back on
    bots = {org: d.install(org, n) for n, org in enumerate(("org-green", "org-blue"), 104130601)}
    assert bots["org-green"] != bots["org-blue"]
    assert d.lc.license_webhooks_of("org-blue") == {d.lc.client_id: True}
    for org, bot in bots.items():
        assert d.lc.routing_statuses[bot] == "accepting_chats"

    # Interleaved: both chats start within a second, each is nudged after the silence, rated, answered, tagged.
    convs = {org: d.start_chat(org, bot) for org, bot in bots.items()}
    for org, conv in convs.items():
        wait_for(lambda: len(d.nudges(conv)) == 1, timeout=AFTER + 15, what=f"{org}'s nudge")
    for org, conv in convs.items():
        for step in conv.rated(0, time.time()):
            assert d.happen(conv, org, step) in ("queued", "duplicate")
    for org, conv in convs.items():
        wait_for(lambda: d.said(conv, BAD), what=f"{org}'s answer to a bad rating")
        d.end_chat(conv, org, OPENING_TAGS | {BAD_TAG})
    d.system.settle()

    for org, conv in convs.items():
        assert set(d.tags(conv)) == OPENING_TAGS | {BAD_TAG}
        tagged = d.calls("tag_thread", conv.chat_id)
        assert len(tagged) == len(OPENING_TAGS) + 1 and {d.acting_org(r) for r in tagged} == {org}
        (nudge,) = d.nudges(conv)
        (answer,) = d.said(conv, BAD)
        assert nudge["author_id"] == answer["author_id"] == bots[org]  # its own bot, with its own bot token
        sent = d.calls("send_event", conv.chat_id)
        assert len(sent) == 2 and {d.acting_org(r) for r in sent} == {org}
    assert all(r.json["organization_id"] in bots for r in d.lc.calls("issue_bot_token"))


def test_a_webhook_before_its_callback_is_parked_then_replayed_once_installed(deployment: Deployment):
    d, org = deployment, "org-early"
    conv = d.start_chat(org, bot_id="not-yet-a-bot")
    wait_for(lambda: d.dead_letters(org), what="its deliveries parked")
    d.system.settle()
    parked = d.dead_letters(org)
    assert {i["handler"] for i in parked} == {"tenants.deliver"} and len(parked) >= 2  # one per event
    assert {i["errors"][-1]["type"] for i in parked} == {"tenant_not_installed"}
    assert metric(d.system.url, "chathooks_deliveries_parked_total", reason="not_installed") >= 2
    assert not d.calls("get_chat", conv.chat_id) and not d.calls("tag_thread", conv.chat_id)

    d.install(org, 104130611)  # the tenant turns active: what it missed runs now
    wait_for(lambda: len(d.nudges(conv)) == 1, timeout=AFTER + 15, what="the parked chat nudged")
    d.end_chat(conv, org)
    d.system.settle()
    assert len(d.calls("tag_thread", conv.chat_id)) == len(OPENING_TAGS) and len(d.nudges(conv)) == 1
    assert d.dead_letters(org) == []


def test_a_tenant_needing_reauth_parks_its_work_and_a_reinstall_replays_it_once(deployment: Deployment,
                                                                                 monkeypatch, capsys):
    d, org = deployment, "org-lapsed"
    d.install(org, 104130621)
    d.accounts.revoke_grant(org)  # consent withdrawn: its tokens die, its refresh token is refused
    (bot,) = d.lc.bots_of(org)
    conv = d.start_chat(org, bot["id"])
    wait_for(lambda: d.status(org) == "needs_reauth", timeout=AFTER + 15, what="the tenant marked needs_reauth")
    wait_for(lambda: d.dead_letters(org), what="its nudge parked")
    d.system.settle()
    assert d.nudges(conv) == []
    for name, value in d.env.items():
        monkeypatch.setenv(name, value)
    assert cli(["dlq", "list", "--org", org, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and all(i["errors"][-1]["type"] == "tenant_needs_reauth" for i in listed)

    d.callback(org)  # installed again: a new grant
    wait_for(lambda: d.status(org) == "active", what="the tenant active again")
    wait_for(lambda: len(d.nudges(conv)) == 1, timeout=AFTER + 15, what="the parked nudge sent")
    d.end_chat(conv, org)
    d.system.settle()
    succeeded = [r for r in d.calls("tag_thread", conv.chat_id) if d.acting_org(r) == org]
    assert len(succeeded) == len(OPENING_TAGS) and len(d.nudges(conv)) == 1
    assert d.dead_letters(org) == []


def test_after_uninstall_webhooks_are_ignored_and_its_tokens_revoked(deployment: Deployment):
    d, org = deployment, "org-leaving"
    bot = d.install(org, 104130631)
    assert d.accounts.live_access_tokens(org)
    assert d.app_webhook("application_uninstalled", org, 104130631).json() == {"status": "handled"}
    wait_for(lambda: not d.accounts.live_access_tokens(org), what="its tokens revoked")
    wait_for(lambda: d.lc.bots_of(org) == [], what="its bot deleted")
    wait_for(lambda: not d.redis.hexists(f"{d.prefix}tenant:{org}", "access_token"), what="its tokens purged")
    assert d.status(org) == "uninstalled"

    conv = Conversation("3.6", bot_id=bot)
    late = d.happen(conv, org, conv.start(time.time(), OPENING))
    assert late == "ignored"
    assert metric(d.system.url, "chathooks_webhooks_uninstalled_total", source="livechat") == 1


def test_two_worker_processes_needing_a_refresh_at_once_make_one(deployment: Deployment):
    d, org = deployment, "org-racing"
    bot = d.install(org, 104130641)
    convs = [d.start_chat(org, bot) for _ in range(6)]
    d.system.settle()
    before = d.accounts.refreshes
    # Its access token now has under a quarter of its lifetime left: every call wants a fresh one. The accounts
    # server answers the refresh a second late, so the other pool process wants one while it is under way.
    d.accounts.fail("token", None, delay=1.0)
    d.redis.hset(f"{d.prefix}tenant:{org}", "expires_at", str(time.time() + 600))
    with ThreadPoolExecutor(len(convs)) as pool:  # the chats end at once: both pool processes call LiveChat
        list(pool.map(lambda conv: d.happen(conv, org, conv.deactivated()), convs))
    for conv in convs:
        wait_for(lambda: set(d.tags(conv)) == OPENING_TAGS, what="every chat tagged")
    d.system.settle()
    assert d.accounts.refreshes == before + 1
    workers = {r.client for conv in convs for r in d.calls("get_chat", conv.chat_id)}
    assert len(workers) >= 2, "both pool processes called LiveChat"
    assert all(d.acting_org(r) == org for conv in convs for r in d.calls("tag_thread", conv.chat_id))


def test_no_tenant_secret_is_left_anywhere_in_the_clear(deployment: Deployment, monkeypatch, capsys):
    """Runs last, after an organization of its own is installed and served: every code, access and refresh token
    the accounts server issued, every bot secret (deleted bots' included) and bot token, the app's client secret,
    its App Webhook token and the encryption key, in none of the logs, keys, values, metrics, answers or the
    CLI's output (the bot tokens the workers share are kept sealed with the encryption key)."""
    d, org = deployment, "org-secretive"
    conv = d.start_chat(org, d.install(org, 104130651))
    wait_for(lambda: len(d.nudges(conv)) == 1, timeout=AFTER + 15, what="its nudge")
    d.end_chat(conv, org)
    d.system.settle()
    secrets = {CLIENT_SECRET, SECRET_KEY, APP_TOKEN, *d.accounts.issued, *d.lc.bot_tokens, *d.lc.bot_secrets}
    assert d.accounts.issued and d.lc.bot_tokens and len(d.lc.bot_secrets) > 1
    forms = {s for secret in secrets for s in (secret, base64.b64encode(secret.encode()).decode())}
    logs = "\n".join(p.log() for p in d.system.processes)
    stored = redis_dump(d.system).values()  # the bot-token cache included: sealed like the rest
    scraped = requests.get(f"{d.system.url}/metrics", timeout=5).text
    answers = [d.callback(org).text, d.app_webhook("application_installed", org, 104130651).text,
               requests.get(f"{d.system.url}/livechat/install", allow_redirects=False, timeout=5).headers["Location"]]
    for name, value in d.env.items():
        monkeypatch.setenv(name, value)
    for command in (["tenants", "list"], ["tenants", "list", "--json"], ["tenants", "show", org],
                    ["tenants", "show", org, "--json"], ["dlq", "list", "--json"], ["chat", conv.chat_id, "--json"]):
        assert cli(command) == 0, command
    printed = capsys.readouterr()
    for where, text in (("logs", logs), ("redis", "\n".join(stored)), ("metrics", scraped),
                        ("answers", "\n".join(answers)), ("the CLI", printed.out + printed.err)):
        leaked = sorted(s[:12] for s in forms if s in text)
        assert not leaked, f"{where} holds {leaked}"
