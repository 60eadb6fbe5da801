"""The shared outbound plumbing: error classification, Retry-After, redaction, and the fake server base."""

from __future__ import annotations

import base64
import json
import pickle
import time
from email.utils import formatdate

import pytest
import requests

from chathooks.http import ErrorInfo, JsonHttp, OutboundError, json_body, parse_retry_after, status_type
from tests.fakes.http_server import FakeHTTPServer, Fault, Reply, Request
from tests.helpers import wait_for

SECRET = "s3cr3t-api-key"


class Echo(FakeHTTPServer):
    """Answers 200 with what it received."""

    def handle(self, request: Request) -> Reply:
        return Reply(200, {"path": request.path, "json": request.json})


def generic_error(response: requests.Response) -> ErrorInfo:
    body = json_body(response)
    return ErrorInfo(status_type(response.status_code), body.get("message", "") if isinstance(body, dict) else "")


@pytest.fixture
def server():
    with Echo() as fake:
        yield fake


def client(**kwargs) -> JsonHttp:
    timeout, parse_error = kwargs.get("timeout", (1.0, 2.0)), kwargs.get("parse_error", generic_error)
    return JsonHttp("svc", None, timeout, parse_error, secrets=(SECRET,))


def fail(http: JsonHttp, server: FakeHTTPServer, **kwargs) -> OutboundError:
    with pytest.raises(OutboundError) as caught:
        http.call("POST", f"{server.url}/x", label="do_x", json={"a": 1}, **kwargs)
    return caught.value


# Retry-After


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3.0), (" 1.5 ", 1.5), ("-2", 0.0), ("soon", None), ("", None), (None, None)]
)
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


# OutboundError


def test_error_str_and_record():
    error = OutboundError(
        "livechat", "send_event", "too_many_requests", "slow down", status=429, transient=True, retry_after=2.0
    )
    assert str(error) == "livechat send_event: too_many_requests (HTTP 429, transient, retry after 2s): slow down"
    assert error.to_dict() == {
        "service": "livechat", "method": "send_event", "type": "too_many_requests", "message": "slow down",
        "status": 429, "transient": True, "retry_after": 2.0,
    }
    assert json.loads(json.dumps(error.to_dict())) == error.to_dict()  # JSON-ready for the dead-letter store


def test_error_survives_pickling():
    error = OutboundError("mailchimp", "PUT /x", "internal", "boom", status=500, transient=True)
    assert pickle.loads(pickle.dumps(error)).to_dict() == error.to_dict()


# JsonHttp


def test_success_returns_json_with_explicit_headers(server):
    assert client().call("POST", f"{server.url}/ok", label="ok", json={"a": 1}) == {"path": "/ok", "json": {"a": 1}}
    (request,) = server.recorded()
    assert request.method == "POST" and request.json == {"a": 1}
    assert request.headers["accept"] == "application/json"
    assert request.time == pytest.approx(time.time(), abs=5)


def test_empty_body_is_none_and_non_json_is_invalid(server):
    server.inject("*", Fault(Reply(204)))
    assert client().call("POST", f"{server.url}/x", label="x") is None
    server.inject("*", Fault(Reply(200, "<html>", content_type="text/html")))
    error = fail(client(), server)
    assert (error.type, error.transient, error.status) == ("invalid_response", False, 200)


@pytest.mark.parametrize(
    ("status", "type_", "transient"),
    [
        (400, "validation", False),
        (401, "authentication", False),
        (404, "not_found", False),
        (409, "conflict", False),
        (429, "too_many_requests", True),
        (500, "internal", True),
        (502, "bad_gateway", True),
        (503, "service_unavailable", True),
    ],
)
def test_status_classification(server, status, type_, transient):
    server.inject("*", Fault(Reply(status, "<html>oops</html>", content_type="text/html")))
    error = fail(client(), server)
    assert (error.service, error.method) == ("svc", "do_x")
    assert (error.status, error.type, error.transient) == (status, type_, transient)


def test_parser_can_override_the_status(server):
    server.inject("*", Fault(Reply(500, {})))
    error = fail(client(parse_error=lambda r: ErrorInfo("validation", "no", transient=False)), server)
    assert (error.type, error.transient) == ("validation", False)


def test_retry_after_is_read_from_the_error(server):
    server.inject("*", Fault(Reply(429, {}, {"Retry-After": formatdate(time.time() + 60, usegmt=True)})))
    assert fail(client(), server).retry_after == pytest.approx(60, abs=2)


def test_read_timeout_is_transient(server):
    server.inject("*", Fault(delay=0.5))
    started = time.monotonic()
    error = fail(client(timeout=(1.0, 0.2)), server)
    assert (error.type, error.transient, error.status) == ("timeout", True, None)
    # The requests exception holds the prepared request (auth header included): it is not chained.
    assert error.__cause__ is None and error.__suppress_context__
    assert time.monotonic() - started < 0.45


def test_after_a_read_timeout_the_retry_waits_as_long_again(server):
    server.inject("*", Fault(delay=0.5))
    assert fail(client(timeout=(1.0, 0.2)), server).retry_after == 0.2
    server.inject("*", Fault(delay=0.5))
    assert fail(client(timeout=0.3), server).retry_after == 0.3


def test_closed_connection_is_transient(server):
    server.inject("*", Fault(close=True))
    error = fail(client(), server)
    assert (error.type, error.transient) == ("connection", True)


def test_stopped_server_is_a_connection_error(server):
    http, url = client(), server.url
    http.call("POST", f"{url}/warm", label="warm")  # leaves a pooled keep-alive connection
    server.stop()
    with pytest.raises(OutboundError) as caught:
        http.call("POST", f"{url}/x", label="x")
    assert (caught.value.type, caught.value.transient) == ("connection", True)


def test_unreachable_port_is_a_connection_error():
    with Echo() as fake:
        url = fake.url
    with pytest.raises(OutboundError) as caught:
        client().call("GET", url, label="x")
    assert caught.value.type == "connection"


def test_redirects_are_not_followed(server):
    server.inject("*", Fault(Reply(302, None, {"Location": f"{server.url}/elsewhere"})))
    error = fail(client(), server)
    assert (error.status, error.transient) == (302, False)
    assert [r.path for r in server.recorded()] == ["/x"]


def test_secrets_never_reach_the_error(server):
    server.inject("*", Fault(Reply(400, {"message": f"bad key {SECRET} and {'per-call-token'}"})))
    error = fail(client(), server, headers={"Authorization": f"Bearer {SECRET}"}, secrets=("per-call-token",))
    for text in (str(error), repr(error), json.dumps(error.to_dict())):
        assert SECRET not in text and "per-call-token" not in text and "Authorization" not in text


# The fake server base


def test_faults_are_per_route_in_order_and_counted(server):
    server.inject("POST /a", Fault(Reply(503)), times=2)
    server.inject("*", Fault(Reply(418)))
    http = client()
    statuses = []
    for path in ("/a", "/b", "/a", "/a", "/b"):
        try:
            http.call("POST", f"{server.url}{path}", label=path)
            statuses.append(200)
        except OutboundError as exc:
            statuses.append(exc.status)
    assert statuses == [503, 418, 503, 200, 200]
    assert [r.route for r in server.recorded("POST /a")] == ["POST /a"] * 3


def test_a_fault_applies_only_to_the_requests_it_accepts(server):
    server.inject("*", Fault(Reply(503), when=lambda r: r.json == {"n": 2}))
    http = client()
    assert http.call("POST", f"{server.url}/x", label="x", json={"n": 1})["json"] == {"n": 1}
    with pytest.raises(OutboundError):
        http.call("POST", f"{server.url}/x", label="x", json={"n": 2})
    assert http.call("POST", f"{server.url}/x", label="x", json={"n": 2})["json"] == {"n": 2}


class Counting(Echo):
    def __init__(self) -> None:
        super().__init__()
        self.handled: list[str] = []

    def handle(self, request: Request) -> Reply:
        self.handled.append(request.path)
        return super().handle(request)


@pytest.mark.parametrize(("fault", "handled"), [
    (Fault(close=True), []),  # dropped unseen
    (Fault(close=True, process=True), ["/x"]),  # done, answer lost
    (Fault(delay=0.5, close=True), []),
    (Fault(delay=0.5, process=True), ["/x"]),  # done at once, answered too late
])
def test_a_processed_fault_carries_the_request_out_before_holding_or_dropping_the_answer(fault, handled):
    with Counting() as fake:
        fake.inject("*", fault)
        fail(client(timeout=(1.0, 0.2)), fake)
        assert fake.handled == handled


def test_a_delayed_request_is_carried_out_late(server):
    with Counting() as fake:
        fake.inject("*", Fault(delay=0.3))
        fail(client(timeout=(1.0, 0.1)), fake)
        assert fake.handled == []
        wait_for(lambda: fake.handled == ["/x"], timeout=5, what="the late request handled")


def test_requests_record_the_callers_address(server):
    client().call("POST", f"{server.url}/x", label="x")
    [request] = server.recorded()
    host, port = request.client
    assert host == "127.0.0.1" and port > 0


def test_reply_headers_and_handler_crashes_are_visible(server):
    class Broken(FakeHTTPServer):
        def handle(self, request: Request) -> Reply:
            raise KeyError("oops")

    with Broken() as broken:
        error = fail(client(), broken)
        assert error.status == 500 and isinstance(broken.errors[0], KeyError)


def test_basic_credentials_echoed_upstream_never_reach_the_error(server):
    token = base64.b64encode(b"chathooks:key-us21").decode()
    server.inject("*", Fault(Reply(401, {"message": f"bad Authorization: Basic {token}"})))
    error = fail(client(), server, auth=("chathooks", "key-us21"))
    for text in (str(error), repr(error), json.dumps(error.to_dict())):
        assert token not in text and "key-us21" not in text
