"""A stateful fake of Live Helper Chat's REST API (reference/live-helper-chat.md §3).

It speaks the documented protocol: ``/index.php/restapi/<view>``, HTTP Basic ``username:api key``
(a failed login is HTTP 400 "Authorization failed!"), ``addmsgadmin`` as a form post, JSON reads
whose message rows carry their ints as strings (PDO's raw rows), ``{"error": true}`` answers with
HTTP 400 from ``addmsgadmin`` and ``chat`` and with HTTP 200 from ``fetchchatmessages``.
``sender=bot`` posts as the bot (−2), ``system`` as −1, anything else as the API user, which, as
LHC does, accepts a pending chat. Subjects are attached by ``subjects_ids``. Calls are recorded.
"""

from __future__ import annotations

import base64
import copy
import itertools
import time
from typing import Any
from urllib.parse import parse_qs

from chathooks.settings import LhcSettings
from tests.fakes.http_server import FakeHTTPServer, Reply, Request

PREFIX = "/index.php/restapi/"
API_USER_ID = 11  # the API user, an operator


class FakeLhc(FakeHTTPServer):
    def __init__(self, user: str = "chathooks-api", api_key: str = "lhc-key-4d2f9a71") -> None:
        super().__init__()
        self.user, self.api_key = user, api_key
        self._basic = "Basic " + base64.b64encode(f"{user}:{api_key}".encode()).decode()
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, list[dict[str, Any]]] = {}
        self.subjects: dict[int, list[int]] = {}
        self._ids = itertools.count(500_000)

    # Test helpers

    def settings(self, **overrides: Any) -> LhcSettings:
        values = {"api_url": f"{self.url}/index.php", "api_user": self.user, "api_key": self.api_key}
        return LhcSettings(**(values | overrides))

    def seed_chat(self, chat: dict[str, Any], messages: list[dict[str, Any]] = (), subjects: list[int] = ()) -> None:
        """Store a chat (its ``lh_chat`` fields) with its messages (``id, msg, user_id, time, …``)."""
        with self.lock:
            self.chats[int(chat["id"])] = {"status": 1, "iwh_id": 0, **copy.deepcopy(chat)}
            self.messages[int(chat["id"])] = [self._row(int(chat["id"]), m) for m in messages]
            self.subjects[int(chat["id"])] = list(subjects)

    def add_message(self, chat_id: int, message: dict[str, Any]) -> None:
        with self.lock:
            self.messages[chat_id].append(self._row(chat_id, message))

    def close(self, chat_id: int) -> None:
        with self.lock:
            self.chats[chat_id].update(status=2, cls_time=int(time.time()))

    def calls(self, view: str | None = None) -> list[Request]:
        return self.recorded(view)

    def posted(self, sender: str | None = None) -> list[dict[str, str]]:
        """The form fields of every addmsgadmin call received (failed ones included)."""
        forms = [form(r) for r in self.calls("addmsgadmin")]
        return [f for f in forms if sender is None or f.get("sender") == sender]

    def fail_next(self, view: str, status: int | None = 500, body: Any = None, delay: float | None = None,
                  close: bool = False, times: int = 1, process: bool = False) -> None:
        """The next ``times`` calls of ``view`` fail: ``status`` with ``body`` (``error: true`` when None), or late."""
        reply = None if status is None else Reply(status, body if body is not None else {"error": True,
                                                                                           "r": "injected"})
        self.fail(view, reply, delay=delay, close=close, times=times, process=process)

    # Protocol

    def route(self, request: Request) -> str:
        if not request.path.startswith(PREFIX):
            return request.path
        view = request.path[len(PREFIX):]
        return "chat" if view.startswith("chat/") else view

    def handle(self, request: Request) -> Reply:
        if request.headers.get("Authorization") != self._basic:
            return Reply(400, "Authorization failed!", content_type="text/html")
        if request.route == "addmsgadmin" and request.method == "POST":
            return self._addmsgadmin(form(request))
        if request.route == "chat" and request.method == "GET":
            return self._chat(int(request.path.rsplit("/", 1)[1]), parse_qs(request.query))
        if request.route == "fetchchatmessages" and request.method == "GET":
            query = {k: v[0] for k, v in parse_qs(request.query).items()}
            return self._fetch(int(query.get("chat_id", 0)), int(query.get("last_message_id", 0)))
        return Reply(404, {"error": True, "result": "no such view"})

    def _chat(self, chat_id: int, query: dict[str, list[str]]) -> Reply:
        chat = self.chats.get(chat_id)
        if chat is None:
            return Reply(400, {"error": True, "errors": [], "result": "Chat could not be found!"})
        result = copy.deepcopy(chat)
        if "subject_ids" in ",".join(query.get("attr", [])):
            result["subject_ids"] = list(self.subjects[chat_id])
        return Reply(200, {"error": False, "result": result})

    def _fetch(self, chat_id: int, last: int) -> Reply:
        if chat_id not in self.chats:
            return Reply(200, {"error": True, "result": "Chat could not be found!"})  # LHC: errors on 200 here
        rows = [m for m in self.messages[chat_id] if int(m["id"]) > last]
        return Reply(200, {"error": False, "result": {"messages": copy.deepcopy(rows), "ot": "",
                                                       "closed": self.chats[chat_id]["status"] == 2,
                                                       "check_status": False, "lmid": 0}})

    def _addmsgadmin(self, fields: dict[str, str]) -> Reply:
        chat = self.chats.get(int(fields.get("chat_id") or 0))
        if chat is None:
            return Reply(400, {"error": True, "r": "Chat could not be found!"})
        if not fields.get("msg", "").strip():
            return Reply(400, {"error": True, "r": "Please enter a message!"})
        sender = fields.get("sender")
        user_id = {"bot": -2, "system": -1}.get(sender or "", API_USER_ID)
        if user_id > 0 and chat["status"] == 0:
            chat.update(status=1, user_id=API_USER_ID)  # an operator's message accepts a pending chat
        subjects = [int(s) for s in fields.get("subjects_ids", "").split(",") if s.strip()]
        for subject in subjects:
            if subject not in self.subjects[chat["id"]]:
                self.subjects[chat["id"]].append(subject)
        row = self._row(chat["id"], {"id": next(self._ids), "msg": fields["msg"], "user_id": user_id,
                                     "time": int(time.time()), "name_support": "Live Support Bot" if sender == "bot"
                                     else ""})
        self.messages[chat["id"]].append(row)
        return Reply(200, {"error": False, "r": "", "msg": {k: int(v) if k in ("id", "user_id", "time", "chat_id")
                                                           else v for k, v in row.items()}})

    @staticmethod
    def _row(chat_id: int, message: dict[str, Any]) -> dict[str, Any]:
        """A message as ``SELECT lh_msg.*`` returns it: every value a string."""
        row = {"id": message["id"], "msg": message.get("msg", ""), "meta_msg": message.get("meta_msg", ""),
               "time": message.get("time", int(time.time())), "chat_id": chat_id, "user_id": message["user_id"],
               "name_support": message.get("name_support", ""), "del_st": 1}
        return {k: str(v) for k, v in row.items()}


def form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
