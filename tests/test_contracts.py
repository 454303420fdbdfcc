"""Every public contract answers with a token that parses, verifies and carries what was asked."""
from __future__ import annotations

import time

import pytest

import tokens
from tests.credentials import APP_CERTIFICATE, APP_ID

PUB = {1: None, 2: None, 3: None, 4: None}
SUB = {1: None}


def check_token(token: str, expire: int, service_cls, **fields):
    parsed = tokens.parse_token(token)
    assert parsed.verify(APP_CERTIFICATE)
    assert parsed.app_id == APP_ID
    assert parsed.expire == expire
    assert abs(parsed.issue_ts - time.time()) < 5
    (service,) = parsed.services
    assert isinstance(service, service_cls)
    for name, value in fields.items():
        assert getattr(service, name) == value, name
    return service


def check_rtc(token, expire, channel, uid_text, role_privileges):
    service = check_token(token, expire, tokens.ServiceRtc, channel_name=channel, uid=uid_text)
    assert service.privileges == dict.fromkeys(role_privileges, expire)


def test_go_sample_fetch_rtc_token(client, bearer):
    r = client.post("/fetch_rtc_token", json={"uid": 1234, "ChannelName": "demo", "role": 1}, headers=bearer())
    assert r.status_code == 200
    assert r.json["code"] == "200"
    check_rtc(r.json["token"], 3600, "demo", "1234", PUB)


def test_go_sample_subscriber(client, bearer):
    r = client.post("/fetch_rtc_token", json={"uid": 0, "ChannelName": "demo", "role": 2}, headers=bearer())
    assert r.status_code == 200
    check_rtc(r.json["token"], 3600, "demo", "", SUB)


@pytest.mark.parametrize("role, privileges", [
    ("publisher", PUB), ("1", PUB), ("host", PUB), ("broadcaster", PUB), ("Publisher", PUB),
    ("subscriber", SUB), ("2", SUB), ("audience", SUB),
])
def test_rtc_path_every_role_spelling(client, bearer, role, privileges):
    r = client.get(f"/rtc/ch1/{role}/uid/42/?expiry=120", headers=bearer())
    assert r.status_code == 200, r.json
    check_rtc(r.json["rtcToken"], 120, "ch1", "42", privileges)
    assert r.json["expire"] == 120


def test_rtc_path_user_account_and_no_trailing_slash(client, bearer):
    r = client.get("/rtc/ch1/publisher/userAccount/alice", headers=bearer())
    assert r.status_code == 200
    check_rtc(r.json["rtcToken"], 3600, "ch1", "alice", PUB)


def test_rtc_path_channel_with_allowed_punctuation(client, bearer):
    r = client.get("/rtc/a%23b%20c%3F/publisher/uid/7/", headers=bearer())
    assert r.status_code == 200
    check_rtc(r.json["rtcToken"], 3600, "a#b c?", "7", PUB)


def test_rtm(client, bearer):
    r = client.get("/rtm/bob/?expiry=300", headers=bearer())
    assert r.status_code == 200
    service = check_token(r.json["rtmToken"], 300, tokens.ServiceRtm, user_id="bob")
    assert service.privileges == {1: 300}


@pytest.mark.parametrize("path, rtm_user", [
    ("/rte/ch1/publisher/uid/42/", "42"),
    ("/rte/ch1/publisher/uid/42/bob/", "bob"),
    ("/rte/ch1/subscriber/userAccount/carol/", "carol"),
])
def test_rte(client, bearer, path, rtm_user):
    r = client.get(path + "?expiry=900", headers=bearer())
    assert r.status_code == 200, r.json
    check_token(r.json["rtmToken"], 900, tokens.ServiceRtm, user_id=rtm_user)
    rtc = tokens.parse_token(r.json["rtcToken"]).services[0]
    assert rtc.channel_name == "ch1"


def test_chat_app_and_account(client, bearer):
    r = client.get("/chat/app/?expiry=60", headers=bearer())
    assert r.status_code == 200
    service = check_token(r.json["chatToken"], 60, tokens.ServiceChat, user_id="")
    assert service.privileges == {2: 60}
    r = client.get("/chat/account/dave/", headers=bearer())
    assert r.status_code == 200
    assert check_token(r.json["chatToken"], 3600, tokens.ServiceChat, user_id="dave").privileges == {1: 3600}


@pytest.mark.parametrize("body, check", [
    ({"tokenType": "rtc", "channel": "c", "role": "publisher", "uid": "99", "expire": 100},
     lambda t: check_rtc(t, 100, "c", "99", PUB)),
    ({"tokenType": "rtc", "channel": "c", "role": "subscriber", "uid": "erin"},
     lambda t: check_rtc(t, 3600, "c", "erin", SUB)),
    ({"tokenType": "rtm", "uid": "frank", "expire": 50},
     lambda t: check_token(t, 50, tokens.ServiceRtm, user_id="frank")),
    ({"tokenType": "rtm", "uid": "frank", "channel": "ignored"},
     lambda t: check_token(t, 3600, tokens.ServiceRtm, user_id="frank")),
    ({"tokenType": "chat", "uid": "gina"},
     lambda t: check_token(t, 3600, tokens.ServiceChat, user_id="gina", privileges={1: 3600})),
    ({"tokenType": "chat"},
     lambda t: check_token(t, 3600, tokens.ServiceChat, user_id="", privileges={2: 3600})),
])
def test_get_token(client, bearer, body, check):
    r = client.post("/getToken", json=body, headers=bearer())
    assert r.status_code == 200, r.json
    check(r.json["token"])


def test_chat_guide_user_and_app(client, bearer):
    r = client.post("/generate-user-token", json={"user_uuid": "hank", "expire": 200}, headers=bearer())
    assert r.status_code == 200
    check_token(r.json["token"], 200, tokens.ServiceChat, user_id="hank", privileges={1: 200})
    r = client.post("/generate-app-token", json={}, headers=bearer())
    assert r.status_code == 200
    check_token(r.json["token"], 3600, tokens.ServiceChat, user_id="", privileges={2: 3600})


@pytest.mark.parametrize("query, channel, uid, privileges, expire", [
    ("channel=c&uid=5&role=publisher&expiredTs=77", "c", "5", PUB, 77),
    ("channel=c&role=subscriber", "c", "", SUB, 3600),
    ("channel=c", "c", "", SUB, 3600),
    ("channelName=c&uid=9&role=host", "c", "9", PUB, 3600),
])
def test_node_access_token(client, bearer, query, channel, uid, privileges, expire):
    r = client.get(f"/access_token?{query}", headers=bearer())
    assert r.status_code == 200, r.json
    check_rtc(r.json["token"], expire, channel, uid, privileges)


def test_python_sample_plain_text(client, bearer):
    r = client.get("/v1/token?channel_name=room", headers=bearer())
    assert r.status_code == 200
    assert r.mimetype == "text/plain"
    check_rtc(r.get_data(as_text=True), 900, "room", "", PUB)
    assert r.headers["X-Token-Expire"] == "900"


def test_default_expire_setting(env, bearer):
    from app import create_app

    env["DEFAULT_EXPIRE"] = "1234"
    client = create_app(env).test_client()
    r = client.get("/rtm/bob/", headers=bearer())
    assert tokens.parse_token(r.json["rtmToken"]).expire == 1234
    r = client.get("/rtm/bob/?expiry=0", headers=bearer())
    assert tokens.parse_token(r.json["rtmToken"]).expire == 1234


def test_token_responses_are_not_cacheable(client, bearer):
    r = client.get("/rtm/bob/", headers=bearer())
    assert "no-store" in r.headers["Cache-Control"]
    assert r.headers["Pragma"] == "no-cache"
    assert r.headers["Expires"] == "-1"
