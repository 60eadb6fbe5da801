"""MailchimpClient against FakeMailchimp: member upsert, tags, auth, error classification, name splitting."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests

from chathooks.http import OutboundError
from chathooks.mailchimp import MailchimpClient, split_name, subscriber_hash
from tests.fakes.mailchimp import FakeMailchimp

EMAIL = "Ada.Lovelace@Example.com"
HASH = hashlib.md5(EMAIL.lower().encode()).hexdigest()


@pytest.fixture
def fake():
    with FakeMailchimp() as server:
        yield server


@pytest.fixture
def client(fake):
    return MailchimpClient(fake.settings())


def caught(call, *args, **kwargs) -> OutboundError:
    with pytest.raises(OutboundError) as info:
        call(*args, **kwargs)
    return info.value


def test_subscriber_hash_is_md5_of_lowercase():
    assert subscriber_hash(EMAIL) == HASH == subscriber_hash(f"  {EMAIL.upper()} ")


def test_upsert_puts_the_member(fake, client):
    member = client.upsert_member(EMAIL, first_name="Ada", last_name="Lovelace")
    (call,) = fake.calls()
    assert (call.method, call.path, call.route) == ("PUT", f"/3.0/lists/{fake.list_id}/members/{HASH}", "member")
    assert call.json == {
        "email_address": EMAIL,
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace"},
    }
    user, _, password = base64.b64decode(call.headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    assert user and password == fake.api_key
    assert member["id"] == HASH and member["status"] == "subscribed"


def test_only_present_merge_fields_are_sent(fake, client):
    client.upsert_member(EMAIL)
    client.upsert_member(EMAIL, first_name="Ada", status_if_new="pending")
    first, second = (c.json for c in fake.calls("member"))
    assert "merge_fields" not in first
    assert second == {"email_address": EMAIL, "status_if_new": "pending", "merge_fields": {"FNAME": "Ada"}}


def test_upsert_is_idempotent_and_keeps_the_status(fake, client):
    client.upsert_member(EMAIL, status_if_new="pending", first_name="Ada")
    client.upsert_member(EMAIL.lower(), status_if_new="subscribed", last_name="Lovelace")
    (member,) = fake.members().values()
    assert member["status"] == "pending"
    assert member["merge_fields"] == {"FNAME": "Ada", "LNAME": "Lovelace"}


def test_tags_follow_the_upsert(fake, client):
    client.upsert_member(EMAIL, tags=["livechat", "vip"])
    put, post = fake.calls()
    assert (put.method, post.method, post.path) == ("PUT", "POST", f"/3.0/lists/{fake.list_id}/members/{HASH}/tags")
    assert post.json == {"tags": [{"name": "livechat", "status": "active"}, {"name": "vip", "status": "active"}]}
    assert fake.members()[EMAIL.lower()]["tags"] == ["livechat", "vip"]


def test_no_tags_no_second_call(fake, client):
    client.upsert_member(EMAIL)
    assert fake.calls("tags") == []


def test_blank_email_is_a_programming_error(fake, client):
    with pytest.raises(ValueError):
        client.upsert_member("  ")
    assert fake.calls() == []


def test_invalid_status_is_final(fake, client):
    error = caught(client.upsert_member, EMAIL, status_if_new="maybe")
    assert (error.service, error.type, error.status, error.transient) == ("mailchimp", "validation", 400, False)
    assert "Invalid Resource" in error.message and "status_if_new" in error.message
    assert error.method == f"PUT /lists/{fake.list_id}/members/{HASH}"


def test_wrong_key_is_final_and_not_leaked(fake):
    client = MailchimpClient(fake.settings(api_key="wrong-key-us21"))
    error = caught(client.upsert_member, EMAIL)
    assert (error.type, error.status, error.transient) == ("authentication", 401, False)
    assert "wrong-key-us21" not in str(error) + repr(error)


def test_unknown_list_is_final(fake):
    error = caught(MailchimpClient(fake.settings(list_id="nope")).upsert_member, EMAIL)
    assert (error.type, error.status, error.transient) == ("not_found", 404, False)


def test_rate_limit_is_transient_with_retry_after(fake, client):
    fake.fail_next("member", status=429, retry_after=12)
    error = caught(client.upsert_member, EMAIL)
    assert (error.type, error.transient, error.retry_after) == ("too_many_requests", True, 12.0)
    assert "Too Many Requests" in error.message


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(fake, client, status):
    fake.fail_next("member", status=status)
    assert caught(client.upsert_member, EMAIL).transient is True


def test_tag_failure_names_the_tags_call(fake, client):
    fake.fail_next("tags", status=503)
    error = caught(client.upsert_member, EMAIL, tags=["livechat"])
    assert error.method == f"POST /lists/{fake.list_id}/members/{HASH}/tags" and error.transient
    assert EMAIL.lower() in fake.members()  # the upsert itself went through


def test_read_timeout_is_transient(fake):
    fake.fail_next("member", status=None, delay=0.5)
    error = caught(MailchimpClient(fake.settings(), timeout=(1.0, 0.2)).upsert_member, EMAIL)
    assert (error.type, error.transient) == ("timeout", True)


def test_closed_connection_is_transient(fake, client):
    fake.fail_next("member", close=True)
    assert caught(client.upsert_member, EMAIL).type == "connection"


def test_api_key_never_in_errors(fake):
    fake.fail_next("member", status=400, detail=f"key {fake.api_key} rejected")
    error = caught(MailchimpClient(fake.settings()).upsert_member, EMAIL)
    assert fake.api_key not in json.dumps(error.to_dict()) + str(error) + repr(error)


def test_fake_checks_the_hash(fake):
    response = requests.put(
        f"{fake.api_url}/lists/{fake.list_id}/members/{'0' * 32}",
        json={"email_address": EMAIL, "status_if_new": "subscribed"},
        auth=("any", fake.api_key),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert set(response.json()) >= {"type", "title", "status", "detail", "instance"}


def test_fake_checks_merge_field_types(fake):
    response = requests.put(
        f"{fake.api_url}/lists/{fake.list_id}/members/{HASH}",
        json={"email_address": EMAIL, "status_if_new": "subscribed", "merge_fields": {"FNAME": 7}},
        auth=("any", fake.api_key),
        timeout=5,
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "FNAME"


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        (None, (None, None)),
        ("   ", (None, None)),
        ("Ada", ("Ada", None)),
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("  Ada   King  Lovelace ", ("Ada", "King Lovelace")),
        ("Lovelace, Ada", ("Ada", "Lovelace")),
        ("Lovelace,", (None, "Lovelace")),
    ],
)
def test_split_name(full, expected):
    assert split_name(full) == expected
