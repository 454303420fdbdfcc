"""Hostile HTTP against the Procfile's gunicorn: garbage in, a 4xx out, and everyone else still served.

JSON-level abuse goes through requests; what requests refuses to send (raw null bytes, broken
framing, oversized or countless headers, clients that never finish) goes through raw sockets.
Every socket operation is bounded by a timeout.

gunicorn runs gevent workers: a client that never finishes its request holds only its own
greenlet, never a worker, and an unfinished request head is dropped after ``keepalive`` seconds.
"""
from __future__ import annotations

import json
import random
import select
import socket
import threading
import time
from contextlib import ExitStack, closing

import pytest
import requests

from tests.conftest import BASE_ENV
from tests.credentials import AUDIENCE, ISSUER, default_claims, sign_jwt, sign_raw
from tests.jwtutil import HUGE, JSONNumber, json_text
from tools.procs import accept_queue, gunicorn

pytestmark = pytest.mark.integration

WORKERS = 2
# Seconds a normal request may take while hostile clients hold connections: room for a busy
# machine, and well short of the 5 s (gunicorn.conf.py's keepalive) a worker held by a slow
# client would keep it waiting.
PROMPT = 2.0
KEEPALIVE = 5  # gunicorn.conf.py's
HOSTILE_ENV = {**BASE_ENV, "RATE_LIMIT_PER_USER": "1000000/minute", "RATE_LIMIT_PER_IP": "1000000/minute"}
POST_ROUTES = ["/fetch_rtc_token", "/getToken", "/generate-user-token", "/generate-app-token"]


@pytest.fixture(scope="module")
def service():
    with gunicorn(HOSTILE_ENV, workers=WORKERS) as svc:
        yield svc


@pytest.fixture(scope="module")
def jwt():
    return sign_jwt("ops-user", groups=["ops"], lifetime=600)


@pytest.fixture
def still_serving(service):
    """After the test: a normal client is answered, promptly."""
    yield
    assert_served_promptly(service)


def assert_served_promptly(service, requests_count: int = 3) -> None:
    for _ in range(requests_count):
        started = time.monotonic()
        r = requests.get(service.url + "/ping", timeout=PROMPT)
        assert r.status_code == 200 and time.monotonic() - started < PROMPT


def assert_json_error(r: requests.Response, status: int, what: str = "") -> None:
    """The service's error body: exactly ``error`` (a message a person can read) and ``code``."""
    assert r.status_code == status, f"{what}: {r.status_code} {r.text[:200]}"
    body = r.json()
    assert sorted(body) == ["code", "error"] and body["code"] == str(status), (what, body)
    assert isinstance(body["error"], str) and body["error"].strip(), (what, body)


# --- bodies -------------------------------------------------------------------------------

_rng = random.Random(20261123)
GARBAGE = [_rng.randbytes(n) for n in (1, 64, 1000, 4000)] + [
    b"", b"\x00" * 256, "😀".encode() * 200, b"\xff\xfe{\x00", b'{"uid": 1, "ChannelName": "c"',
    b"[]", b"null", b'"a string"', b"1e999999", b"NaN", b"\xef\xbb\xbf[1]",
]
# The body is read as JSON whatever its type says (as the Go servers read it): garbage is a 400.
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-16", "application/vnd.api+json",
                 "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/octet-stream", "application/xml", "json", "*/*"]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_garbage_bodies_are_refused(service, jwt, still_serving, content_type):
    expected = 400
    headers = {"Content-Type": content_type} if content_type else {}
    for route in POST_ROUTES:
        for body in GARBAGE:
            what = f"POST {route} {content_type} {body[:20]!r}"
            r = requests.post(service.url + route, data=body, headers=headers, timeout=5)
            assert_json_error(r, 401, what)  # nothing is read before the caller is known
            r = requests.post(service.url + route, data=body, timeout=5,
                              headers={**headers, "Authorization": f"Bearer {jwt}"})
            assert_json_error(r, expected, what)


@pytest.mark.parametrize("body", [
    json.dumps({"expire": 60, "pad": "x" * (1 << 20)}).encode(),  # 1 MB, with Content-Length
    iter([b'{"pad": "', b"x" * (1 << 20), b'"}']),  # 1 MB, chunked: no length announced
], ids=["content-length", "chunked"])
def test_a_huge_body_is_413(service, jwt, still_serving, body):
    r = requests.post(service.url + "/generate-app-token", data=body, timeout=10,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"})
    assert_json_error(r, 413)


@pytest.mark.parametrize("size, status", [(4096, 200), (4097, 413)])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_max_body_bytes_is_the_cap_however_the_body_is_framed(service, jwt, size, status, chunked):
    body = b'{"expire": 60}'.ljust(size)  # MAX_BODY_BYTES is 4096 in the test configuration
    r = requests.post(service.url + "/generate-app-token", data=iter([body]) if chunked else body, timeout=5,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"})
    assert r.status_code == status, r.text


@pytest.mark.parametrize("body", [
    "[" * 2040 + "]" * 2040,  # deeper than Python's recursion limit, within MAX_BODY_BYTES
    '{"expire":' + '{"a":' * 670 + "1" + "}" * 671,  # deep but parseable, and not a lifetime
    json.dumps({"expire": True, **{f"k{i}": i for i in range(300)}}),  # many keys
    json.dumps({"tokenType": "rtc", "channel": ["c"] * 700, "role": {"r": 1}, "uid": [1], "expire": 1.5}),
], ids=["deep-arrays", "deep-objects", "many-keys", "wrong-types"])
def test_deep_and_odd_json_is_400(service, jwt, still_serving, body):
    assert len(body) <= 4096
    for route in POST_ROUTES:
        r = requests.post(service.url + route, data=body, timeout=5,
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"})
        assert_json_error(r, 400, route)


# --- paths and query strings ---------------------------------------------------------------

INVALID = [  # null bytes, Unicode and numbers where Agora allows none: 400 with a JWT
    "/rtc/%00/publisher/uid/1/", "/rtc/%F0%9F%98%80/publisher/uid/1/", "/rtc/c/%00/uid/1/",
    "/rtc/c/publisher/%00/1/", "/rtc/c/publisher/uid/%00/", "/rtc/c/publisher/uid/99999999999999999999/",
    "/rte/%E2%80%AE/publisher/uid/1/", "/rte/c/publisher/uid/%D9%A3/", "/rtm/al/?expiry=%00",
    "/rtm/al/?expiry=%D9%A3", "/rtm/al/?expiry=1e9", "/chat/app/?expiry=-1", "/chat/account/al/?expiry=%F0%9F%98%80",
    "/chat/account/" + "%F0%9F%98%80" * 64 + "/", "/access_token?channel=%00&uid=1",
    "/access_token?channel=c&uid=%F0%9F%98%80", "/access_token?channel=c&uid=1&role=%00",
    "/access_token?channel=c&uid=-1", "/v1/token?channel_name=%E2%80%AE", "/v1/token?channel_name=" + "a" * 64,
]
# Agora limits accounts only by length (1..255 bytes) today: these are valid, if odd, accounts.
ODD_ACCOUNTS = ["/rtm/%F0%9F%98%80/", "/rtm/%00/", "/rtm/%FF%FE/", "/chat/account/%0D%0ASet-Cookie:x/",
                "/rtc/c/publisher/userAccount/%E2%80%AE/"]


@pytest.mark.parametrize("path", INVALID)
def test_nul_and_unicode_in_parameters_are_400(service, jwt, path):
    assert_json_error(requests.get(service.url + path, timeout=5), 401, path)
    assert_json_error(requests.get(service.url + path, headers={"Authorization": f"Bearer {jwt}"}, timeout=5),
                      400, path)


@pytest.mark.parametrize("path", ODD_ACCOUNTS)
def test_identifiers_outside_agoras_rules_are_400(service, jwt, path):
    assert_json_error(requests.get(service.url + path, timeout=5), 401, path)
    r = requests.get(service.url + path, headers={"Authorization": f"Bearer {jwt}"}, timeout=5)
    assert_json_error(r, 400, path)
    assert "Set-Cookie" not in r.headers


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_time_claim_no_float_can_hold_is_401(service, still_serving, claim):
    """309 digits: refused as malformed before the signature is checked, never a 500."""
    payload = json_text({**default_claims(iss=ISSUER, aud=AUDIENCE, groups=["ops"]), claim: JSONNumber(HUGE)})
    r = requests.get(service.url + "/rtm/bob/", timeout=5,
                     headers={"Authorization": f"Bearer {sign_raw({'alg': 'HS256'}, payload)}"})
    assert_json_error(r, 401, claim)


@pytest.mark.parametrize("path", ["/rtm/%2F/", "/rtm/..%2F..%2Fetc%2Fpasswd/", "/rtc/c/publisher/uid/1/x/y/",
                                  "/%00", "/ping/%F0%9F%98%80"])
def test_unroutable_paths_are_404(service, path):
    assert_json_error(requests.get(service.url + path, timeout=5), 404, path)


# --- raw sockets: what requests will not send ----------------------------------------------

def exchange(service, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection, half-close, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the server answered and closed (ENOTCONN on shutdown) before reading it all
        return read_until_closed(s)


def read_until_closed(s: socket.socket) -> bytes:
    return read_timed(s)[0]


def read_timed(s: socket.socket) -> tuple[bytes, float, float]:
    """What the server sends until it closes, when its first byte came, and when it closed."""
    answer, answered = b"", None
    try:
        while chunk := s.recv(65536):
            answered = answered or time.monotonic()
            answer += chunk
    except ConnectionResetError:
        pass
    closed = time.monotonic()
    return answer, answered or closed, closed


def status_of(answer: bytes) -> int | None:
    """The status of a raw HTTP answer; None when the server closed without one."""
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None


def auth_post(jwt: str, framing: bytes) -> bytes:
    return (b"POST /getToken HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + jwt.encode() + b"\r\n" + framing)


PING = b"GET /ping HTTP/1.1\r\nHost: t\r\n"
# name: (request, its status). Each over-limit request is small enough for gunicorn to read whole
# before it answers: a server that closes with unread bytes resets the connection, and the
# client may then lose the answer, which would make the status a matter of timing.
RAW = {
    "nul-in-path": (b"GET /rtc/\x00/publisher/uid/1/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "utf8-in-path": (b"GET /rtm/\xf0\x9f\x98\x80/ HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    "nul-in-header": (PING + b"X-A: a\x00b\r\n\r\n", 400),
    "9kb-header": (PING + b"X-Big: " + b"a" * 9_000 + b"\r\n\r\n", 431),
    "500-headers": (PING + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n", 431),
    "5kb-url": (b"GET /ping?" + b"a" * 5_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    "obs-fold": (PING + b"X-A: a\r\n b\r\n\r\n", 400),
    "bare-lf": (b"GET /ping HTTP/1.1\nHost: t\n\n", 400),
    "http-9.9": (b"GET /ping HTTP/9.9\r\nHost: t\r\n\r\n", 400),
    "tls-hello": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), 400),
    "negative-length": (PING + b"Content-Length: -1\r\n\r\n", 400),
    "length-and-chunked": (b"POST /getToken HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "two-hosts": (PING + b"Host: u\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", RAW)
def test_broken_http_gets_its_4xx(service, still_serving, name):
    request, status = RAW[name]
    assert status_of(exchange(service, request)) == status


@pytest.mark.parametrize("framing", [
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # not a chunk size
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",  # no CRLF after the chunk
    b"Transfer-Encoding: chunked\r\n\r\n2;a=\x01\r\n{}\r\n0\r\n\r\n",  # a control byte in an extension
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}",  # cut short
    b"Content-Length: 100\r\n\r\n{",  # cut short
], ids=["chunk-size", "chunk-terminator", "chunk-extension", "chunked-short", "length-short"])
def test_a_malformed_body_with_a_jwt_is_400(service, jwt, still_serving, framing):
    answer = exchange(service, auth_post(jwt, framing))
    assert status_of(answer) == 400, answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == "400"


# --- slow clients --------------------------------------------------------------------------

def wait_accepted(port: int, timeout: float = 10.0) -> None:
    """Until the server has accepted every connection made to ``port``: a slow client the test
    counts on is then held by a worker, however long a busy machine took to get to it."""
    deadline = time.monotonic() + timeout
    while accept_queue(port):
        assert time.monotonic() < deadline, f"connections to {port} still not accepted after {timeout}s"
        time.sleep(0.01)


class SlowClient:
    """A connection whose request never completes until ``give_up``; accepted by the server
    before the constructor returns, unless ``settle`` is False (the caller waits, for many)."""

    def __init__(self, service, kind: str, jwt: str, settle: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", service.port), timeout=5)
        self.connected = time.monotonic()  # no server timer on this connection can start earlier
        self._stop = threading.Event()
        self._trickler = None
        if kind == "slowloris":  # a header value, one byte every 0.1 s, never the blank line
            self.sock.sendall(PING + b"X-Slow: ")
            self._trickler = threading.Thread(target=self._trickle, daemon=True)
            self._trickler.start()
        elif kind == "stalled-body":  # announces 1000 bytes, sends 10
            self.sock.sendall(auth_post(jwt, b"Content-Length: 1000\r\n\r\n" + b'{"expire":'))
        else:
            assert kind == "idle"  # connects and says nothing
        if settle:
            wait_accepted(service.port)

    def _trickle(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.sock.sendall(b"a")
            except OSError:
                return

    def give_up(self) -> int | None:
        """Stop sending and half-close: the status the server then answers (None: it just closes)."""
        self._stop_trickling()
        self.sock.shutdown(socket.SHUT_WR)
        return status_of(read_until_closed(self.sock))

    def close(self) -> None:
        self._stop_trickling()
        self.sock.close()

    def _stop_trickling(self) -> None:
        self._stop.set()
        if self._trickler:
            self._trickler.join(2)


# What a slow client gets when it gives up: a half-sent head or nothing is closed without an
# answer (there is no request to answer); a body cut short is a JSON 400.
@pytest.mark.parametrize("kind, answer", [("slowloris", None), ("stalled-body", 400), ("idle", None)])
def test_a_slow_client_does_not_block_others(service, jwt, kind, answer):
    with closing(SlowClient(service, kind, jwt)) as slow:
        assert_served_promptly(service, requests_count=10)
        assert slow.give_up() == answer
    assert_served_promptly(service)


def test_many_more_slow_clients_than_workers_stall_nobody(service, jwt):
    with ExitStack() as stack:
        for kind in ["slowloris", "stalled-body", "idle"] * (4 * WORKERS):
            stack.enter_context(closing(SlowClient(service, kind, jwt, settle=False)))
        wait_accepted(service.port)
        assert_served_promptly(service)
        r = requests.get(service.url + "/rtm/bob/", headers={"Authorization": f"Bearer {jwt}"}, timeout=PROMPT)
        assert r.status_code == 200


def test_an_unfinished_request_head_is_dropped_after_the_keepalive_timeout(service, jwt):
    with closing(SlowClient(service, "slowloris", jwt)) as slow:
        slow.sock.settimeout(15)
        assert status_of(read_until_closed(slow.sock)) is None  # no request, so no answer
        # gunicorn.conf.py's keepalive, 5 s, from the accept: counted from the connect, not from
        # after the settling sleep, which a busy machine can stretch
        assert 4.5 < time.monotonic() - slow.connected < 8


def test_a_body_that_stops_arriving_is_given_up_on(service, jwt):
    from api.params import BODY_TIMEOUT

    with socket.create_connection(("127.0.0.1", service.port), timeout=BODY_TIMEOUT + 10) as s:
        started = time.monotonic()  # before the send: the server's deadline cannot start earlier
        s.sendall(auth_post(jwt, b"Content-Length: 1000\r\n\r\n" + b'{"expire":'))
        answer, answered, closed = read_timed(s)
    assert status_of(answer) == 408, answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == "408"
    assert BODY_TIMEOUT - 0.5 < answered - started < BODY_TIMEOUT + 5  # the slack: a busy machine
    assert closed - answered < KEEPALIVE + 3  # then the unread rest, up to keepalive


def test_a_body_trickled_a_byte_at_a_time_is_given_up_on_too(service, jwt):
    from api.params import BODY_TIMEOUT

    with closing(socket.create_connection(("127.0.0.1", service.port), timeout=BODY_TIMEOUT + 10)) as s:
        started = time.monotonic()  # before the send: the server's deadline cannot start earlier
        s.sendall(auth_post(jwt, b"Content-Length: 1000\r\n\r\n"))
        while time.monotonic() - started < BODY_TIMEOUT + 10:  # a byte a second: no read waits long
            try:
                s.sendall(b" ")
            except OSError:
                break
            ready, _, _ = select.select([s], [], [], 1.0)
            if ready:
                break
        answer, answered, closed = read_timed(s)
    assert status_of(answer) == 408, answer[:200]
    assert BODY_TIMEOUT - 0.5 < answered - started < BODY_TIMEOUT + 5  # the slack: a busy machine
    assert closed - answered < KEEPALIVE + 3


def test_behind_nginx_slow_clients_stall_nobody(service, jwt, tmp_path):
    """The deployment the README gives: nginx buffers each request before passing it on, so
    many more slow clients than workers hold only nginx connections, never a worker."""
    from types import SimpleNamespace

    from tests.nginx import nginx

    with nginx(service.port, tmp_path) as port:
        front = SimpleNamespace(port=port, url=f"http://127.0.0.1:{port}")
        with ExitStack() as stack:
            for kind in ["slowloris", "stalled-body"] * (2 * WORKERS):
                stack.enter_context(closing(SlowClient(front, kind, jwt)))
            assert_served_promptly(front)
            r = requests.get(front.url + "/rtm/bob/", headers={"Authorization": f"Bearer {jwt}"}, timeout=PROMPT)
            assert r.status_code == 200
