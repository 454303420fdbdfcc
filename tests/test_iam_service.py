"""Authentication and authorization through the HTTP contracts.

The policy and the JWT verifier have their own tests; these prove that every contract goes
through them, the same way, and that refusals have the right shape.
"""
from __future__ import annotations

import pytest

import tokens
from tests.credentials import sign_jwt

PATHS = ["/rtc/live-1/publisher/uid/1/", "/rtm/bob/", "/chat/app/", "/access_token?channel=c",
         "/v1/token?channel_name=c", "/rte/c/publisher/uid/1/", "/chat/account/bob/"]
POSTS = [("/fetch_rtc_token", {"uid": 1, "ChannelName": "c", "role": 1}),
         ("/getToken", {"tokenType": "rtm", "uid": "bob"}),
         ("/generate-user-token", {"user_uuid": "bob"}), ("/generate-app-token", {})]


@pytest.mark.parametrize("path", PATHS)
def test_get_without_jwt_is_401_with_bare_challenge(client, path):
    r = client.get(path)
    assert r.status_code == 401
    assert r.json["code"] == "401" and r.json["error"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "invalid_token" not in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize("path, body", POSTS)
def test_post_without_jwt_is_401(client, path, body):
    r = client.post(path, json=body)
    assert r.status_code == 401


@pytest.mark.parametrize("header", [
    "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "bearer not.a.jwt", "Bearer x" * 2000,
])
def test_malformed_authorization_is_401(client, header):
    r = client.get("/rtm/bob/", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json["code"] == "401"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", [
    sign_jwt("ops-user", groups=["ops"], lifetime=-120),
    sign_jwt("ops-user", groups=["ops"], key="another-secret-that-is-long-enough-0123"),
    sign_jwt("ops-user", groups=["ops"], iss="https://evil.test/"),
    sign_jwt("ops-user", groups=["ops"], aud="someone-else"),
    sign_jwt(None, groups=["ops"]),
    sign_jwt("ops-user", groups=["ops"], exp="tomorrow"),
], ids=["expired", "another secret", "another issuer", "another audience", "no subject", "exp not a number"])
def test_invalid_jwt_is_401_invalid_token(client, token):
    r = client.get("/rtm/bob/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_jwt_in_query_or_cookie_is_ignored(client):
    token = sign_jwt("ops-user", groups=["ops"])
    assert client.get(f"/rtm/bob/?access_token={token}").status_code == 401
    client.set_cookie("access_token", token)
    assert client.get("/rtm/bob/").status_code == 401


# The same request, as each contract spells it: a subscriber-only caller ("authenticated"
# grant: lobby, subscriber, self, 600 s) asking to publish in the lobby.
DENIED_PUBLISH = [
    ("GET", "/rtc/lobby/publisher/userAccount/zoe/", None),
    ("GET", "/rte/lobby/publisher/userAccount/zoe/", None),
    ("GET", "/access_token?channel=lobby&uid=0&role=publisher", None),
    ("POST", "/fetch_rtc_token", {"uid": 0, "ChannelName": "lobby", "role": 1}),
    ("POST", "/getToken", {"tokenType": "rtc", "channel": "lobby", "role": "publisher", "uid": "zoe"}),
    ("GET", "/v1/token?channel_name=lobby", None),
]


@pytest.mark.parametrize("method, path, body", DENIED_PUBLISH)
def test_every_contract_denies_the_same_request(client, make_jwt, method, path, body):
    headers = {"Authorization": f"Bearer {make_jwt('zoe')}"}
    r = client.open(path, method=method, json=body, headers=headers)
    assert r.status_code == 403, r.get_data(as_text=True)
    assert r.json["code"] == "403"
    assert "live-" not in r.json["error"]  # the policy itself is not echoed


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/rtc/lobby/subscriber/userAccount/zoe/", None),
    ("GET", "/rte/lobby/subscriber/userAccount/zoe/", None),
    ("POST", "/getToken", {"tokenType": "rtc", "channel": "lobby", "role": "audience", "uid": "zoe"}),
])
def test_every_contract_grants_the_same_request(client, make_jwt, method, path, body):
    headers = {"Authorization": f"Bearer {make_jwt('zoe')}"}
    r = client.open(path, method=method, json=body, headers=headers)
    if path.startswith("/rte"):
        assert r.status_code == 403  # the lobby grant gives no RTM
        return
    assert r.status_code == 200, r.get_data(as_text=True)
    token = r.json.get("rtcToken") or r.json.get("token")
    (service,) = tokens.parse_token(token).services
    assert (service.channel_name, service.uid, service.privileges) == ("lobby", "zoe", {1: 600})


def test_lifetime_capped_and_reported(client, make_jwt):
    headers = {"Authorization": f"Bearer {make_jwt('zoe')}"}
    r = client.get("/rtc/lobby/subscriber/userAccount/zoe/?expiry=7200", headers=headers)
    assert r.status_code == 200
    assert r.json["expire"] == 600 and r.headers["X-Token-Expire"] == "600"
    assert tokens.parse_token(r.json["rtcToken"]).expire == 600


def test_host_publishes_in_own_room_as_self_only(client, make_jwt):
    headers = {"Authorization": f"Bearer {make_jwt('hana', groups=['hosts'], agora_uid=4242)}"}
    assert client.get("/rtc/room-hana/publisher/uid/4242/", headers=headers).status_code == 200
    assert client.get("/rtc/live-x/host/uid/4242/", headers=headers).status_code == 200
    assert client.get("/rtc/room-other/publisher/uid/4242/", headers=headers).status_code == 403
    assert client.get("/rtc/live-x/publisher/uid/4243/", headers=headers).status_code == 403
    assert client.get("/rtc/live-x/publisher/uid/0/", headers=headers).status_code == 403
    assert client.get("/chat/app/", headers=headers).status_code == 403


def test_denial_is_audited(client, make_jwt, logs):
    client.get("/rtc/secret/publisher/userAccount/zoe/", headers={"Authorization": f"Bearer {make_jwt('zoe')}"})
    (record,) = [r for r in logs.records if r.name.endswith("audit")]
    assert record.fields["decision"] == "denied" and record.fields["channel"] == "secret"
    assert record.fields["subject"] == "zoe" and record.fields["reason"]
