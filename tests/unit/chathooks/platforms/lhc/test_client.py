"""LhcClient against FakeLhc: Basic user:key, form posts, string ints, error:true on 200, classified errors."""

from __future__ import annotations

import base64

import pytest

from chathooks.http import OutboundError
from chathooks.platforms.lhc import client as client_module
from chathooks.platforms.lhc.client import LhcClient
from tests.fakes.lhc import form


@pytest.fixture
def client(lhc) -> LhcClient:  # type: ignore[no-untyped-def]
    return LhcClient(lhc.settings(), timeout=(2.0, 2.0))


def caught(call, *args, **kwargs) -> OutboundError:  # type: ignore[no-untyped-def]
    with pytest.raises(OutboundError) as info:
        call(*args, **kwargs)
    return info.value


def test_add_msg_admin_is_a_form_post_with_basic_auth(client, lhc):
    msg = client.add_msg_admin("5388", "Thanks for waiting", sender="bot", no_event=True)
    (call,) = lhc.calls("addmsgadmin")
    assert call.path == "/index.php/restapi/addmsgadmin"
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(call) == {"chat_id": "5388", "msg": "Thanks for waiting", "sender": "bot", "no_event": "1"}
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"chathooks-api:lhc-key-4d2f9a71").decode()
    assert (msg["user_id"], msg["msg"]) == (-2, "Thanks for waiting")


def test_subjects_and_events(client, lhc):
    client.add_msg_admin("5388", "tags", sender="system", no_event=False, subjects_ids=[3, 7])
    assert form(lhc.calls("addmsgadmin")[0]) == {"chat_id": "5388", "msg": "tags", "sender": "system",
                                                "subjects_ids": "3,7"}
    assert lhc.subjects[5388] == [3, 7]


def test_chat_reads_fields_and_subjects(client):
    chat = client.chat("5388")
    assert (chat["status"], chat["subject_ids"]) == (1, [3])


def test_messages_are_every_row_page_after_page(client, lhc, monkeypatch):
    rows = client.messages("5388")
    assert [r["id"] for r in rows] == ["120040", "120041", "120042"]  # raw rows: strings
    assert len(lhc.calls("fetchchatmessages")) == 2  # the last page is empty


def test_a_failed_login_is_a_final_authorization_error(lhc):
    error = caught(LhcClient(lhc.settings(api_key="wrong-key-123")).chat, "5388")
    assert (error.type, error.status, error.transient) == ("authorization", 400, False)


def test_a_missing_chat_is_final_not_found_on_400_and_on_200(client):
    assert caught(client.chat, "1").type == "not_found"
    assert caught(client.add_msg_admin, "1", "hi", sender="bot", no_event=True).type == "not_found"
    error = caught(client.messages, "1")  # fetchchatmessages says error: true with HTTP 200
    assert (error.type, error.status, error.transient) == ("not_found", 200, False)


def test_error_true_on_200_is_a_failure_worth_a_retry_unless_it_says_why(client, lhc):
    lhc.fail_next("fetchchatmessages", status=200, body={"error": True, "result": "Database is busy"})
    error = caught(client.messages, "5388")
    assert (error.status, error.type, error.transient) == (200, "lhc_error", True) and "busy" in error.message
    lhc.fail_next("fetchchatmessages", status=200, body={"error": True, "result": "You cannot read this chat!"})
    assert caught(client.messages, "5388").type == "authorization"


@pytest.mark.parametrize("status, kind", [(500, "internal"), (503, "service_unavailable"), (429, "too_many_requests")])
def test_server_errors_are_transient(client, lhc, status, kind):
    lhc.fail_next("addmsgadmin", status=status)
    error = caught(client.add_msg_admin, "5388", "hi", sender="bot", no_event=True)
    assert (error.type, error.transient) == (kind, True)


def test_slow_answers_time_out_as_transient(lhc):
    lhc.fail_next("chat", status=None, delay=1.0)
    error = caught(LhcClient(lhc.settings(), timeout=(0.5, 0.3)).chat, "5388")
    assert (error.type, error.transient) == ("timeout", True)


def test_errors_never_carry_the_api_key(lhc):
    key = "lhc-key-4d2f9a71"
    basic = base64.b64encode(f"chathooks-api:{key}".encode()).decode()
    lhc.fail_next("addmsgadmin", status=400, body={"error": True, "r": f"bad key {key} (Basic {basic})"})
    error = caught(LhcClient(lhc.settings()).add_msg_admin, "5388", "x", sender="bot", no_event=True)
    assert key not in str(error) and basic not in str(error) and key not in repr(error.to_dict())


def test_paging_is_bounded(client, lhc, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_PAGES", 1)
    assert len(client.messages("5388")) == 3 and len(lhc.calls("fetchchatmessages")) == 1


def test_an_error_true_message_echoing_the_key_is_redacted(client, lhc):
    lhc.fail_next("fetchchatmessages", status=200, body={"error": True, "result": "key lhc-key-4d2f9a71 is busy"})
    assert "lhc-key-4d2f9a71" not in str(caught(client.messages, "5388"))
