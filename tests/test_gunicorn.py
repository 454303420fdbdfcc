"""The real thing: the Procfile's gunicorn with two workers, every contract over HTTP."""
from __future__ import annotations

import pytest

import tokens
from tests.conftest import BASE_ENV
from tests.credentials import APP_CERTIFICATE, sign_jwt
from tools.procs import gunicorn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "service.log"
    with gunicorn(BASE_ENV, workers=2, log_path=log) as svc:
        svc.log_path = log
        yield svc


@pytest.fixture(scope="module")
def auth():
    return {"Authorization": "Bearer " + sign_jwt("ops-user", groups=["ops"])}


CALLS = [
    ("POST", "/fetch_rtc_token", {"uid": 1, "ChannelName": "c", "role": 1}, "token"),
    ("GET", "/rtc/c/publisher/uid/1/", None, "rtcToken"),
    ("GET", "/rtc/c/subscriber/userAccount/al/?expiry=60", None, "rtcToken"),
    ("GET", "/rtm/al/", None, "rtmToken"),
    ("GET", "/rte/c/publisher/uid/1/", None, "rtmToken"),
    ("GET", "/chat/app/", None, "chatToken"),
    ("GET", "/chat/account/al/", None, "chatToken"),
    ("POST", "/getToken", {"tokenType": "rtc", "channel": "c", "role": "publisher", "uid": "1"}, "token"),
    ("POST", "/generate-user-token", {"user_uuid": "al"}, "token"),
    ("POST", "/generate-app-token", {}, "token"),
    ("GET", "/access_token?channel=c&uid=1&role=publisher", None, "token"),
]


@pytest.mark.parametrize("method, path, body, key", CALLS)
def test_every_contract_over_http(service, auth, method, path, body, key):
    r = service.http.request(method, service.url + path, json=body, headers=auth, timeout=10)
    assert r.status_code == 200, r.text
    assert tokens.parse_token(r.json()[key]).verify(APP_CERTIFICATE)
    assert "no-store" in r.headers["Cache-Control"]


def test_python_sample_over_http(service, auth):
    r = service.get("/v1/token?channel_name=c", headers=auth)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert tokens.parse_token(r.text).verify(APP_CERTIFICATE)


def test_errors_over_http(service, auth):
    assert service.get("/rtm/al/").status_code == 401
    r = service.post("/getToken", data=b"\x00\xff" * 10, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "400"
    assert service.get("/ping").json() == {"message": "pong"}


def test_json_log_lines(service, auth):
    service.get("/rtm/al/", headers=auth)
    import json
    entries = [json.loads(line) for line in service.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("path") == "/rtm/al/" and e.get("status") == 200 for e in entries)
    assert not any(auth["Authorization"].split()[1] in json.dumps(e) for e in entries)


def test_a_subject_utf8_cannot_hold_is_served_and_logged(service):
    """A lone surrogate in a JWT claim (legal in JSON) reaches the log as its escape."""
    import json

    headers = {"Authorization": "Bearer " + sign_jwt("ops-\ud800", groups=["ops"])}
    r = service.get("/rtm/al/", headers=headers)
    assert r.status_code == 200
    audit = [json.loads(line) for line in service.log_path.read_text().splitlines()
             if line.startswith("{") and '"token granted"' in line]
    assert any(entry.get("subject") == "ops-\ud800" for entry in audit)


def test_a_keep_alive_client_with_requests_queued_does_not_starve_the_others():
    """gunicorn.conf.py's post_request yield: one gevent worker, one client with 2,000 requests
    pipelined on its connection, and a second client asking once meanwhile. Without the yield
    the worker would serve the whole queue first (its next request is always already there)."""
    import socket
    import threading
    import time

    env = {**BASE_ENV, "RATE_LIMIT_PER_IP": "1000000/minute"}
    with gunicorn(env, workers=1) as service:
        queued = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        count, answered = 2000, threading.Event()

        def drain():
            seen = b""
            while seen.count(b"HTTP/1.1 200") < count:
                seen += queued.recv(1 << 20)
            answered.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        started = time.monotonic()
        queued.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n" * count)
        time.sleep(0.02)  # the worker is busy with the queue now
        asked = time.monotonic()
        assert service.get("/ping", timeout=10).status_code == 200
        waited = time.monotonic() - asked
        assert answered.wait(30)
        queue_took = time.monotonic() - started
        queued.close()
    assert waited < queue_took / 4, (waited, queue_took)


def test_a_body_read_leaves_the_connection_to_the_keep_alive_timeout():
    """The body's read timeout (10 s) is put back: with a longer keep-alive, the connection
    that carried a POST still serves a request after 11 s of quiet."""
    import http.client
    import time

    env = {**BASE_ENV, "GUNICORN_CMD_ARGS": "--keep-alive 30"}
    headers = {"Authorization": "Bearer " + sign_jwt("ops-user", groups=["ops"]), "Content-Type": "application/json"}
    with gunicorn(env, workers=1) as service:
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=20)
        conn.request("POST", "/generate-app-token", body=b'{"expire": 60}', headers=headers)
        first = conn.getresponse()
        assert first.status == 200 and b'"token"' in first.read()
        time.sleep(11)
        conn.request("GET", "/ping")
        answer = conn.getresponse()
        assert answer.status == 200 and answer.read() == b'{"message":"pong"}\n'
        conn.close()
