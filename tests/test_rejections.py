"""Every rejected input: the right 4xx, a JSON body that says what is wrong, never a 5xx."""
from __future__ import annotations

import pytest

from app import create_app
from tests.conftest import BASE_ENV


@pytest.fixture(scope="module")
def client():
    """One app for the whole table: each request here is refused, and the rate limits it counts
    against are far out of reach (an app costs more to build than a hundred refusals)."""
    return create_app({**dict(BASE_ENV), "TESTING": True}).test_client()

BAD_GETS = [
    ("/rtc/ch/owner/uid/1/", "role must be one of"),
    ("/rtc/ch/3/uid/1/", "role must be one of"),
    ("/rtc/ch/publisher/uid/-1/", "uid must be an integer"),
    ("/rtc/ch/publisher/uid/4294967296/", "uid must be an integer"),
    ("/rtc/ch/publisher/uid/12a/", "uid must be an integer"),
    ("/rtc/ch/publisher/uid/" + "1" * 5000 + "/", "uid must be an integer"),  # past int()'s digit limit
    ("/rtc/ch/publisher/uid/%EF%BC%91/", "uid must be an integer"),  # fullwidth digit one
    ("/rtc/ch/publisher/name/1/", "tokenType must be uid or userAccount"),
    ("/rtc/ch/publisher/userAccount/" + "a" * 256 + "/", "256 bytes"),
    ("/rtc/" + "c" * 64 + "/publisher/uid/1/", "channelName"),
    ("/rtc/a%2Ab/publisher/uid/1/", "channelName"),
    ("/rtc/a%00b/publisher/uid/1/", "channelName"),
    ("/rtc/ch/publisher/uid/1/?expiry=-1", "expiry must not be negative"),
    ("/rtc/ch/publisher/uid/1/?expiry=86401", "expiry must be at most 86400"),
    ("/rtc/ch/publisher/uid/1/?expiry=ten", "expiry must be a whole number"),
    ("/rtc/ch/publisher/uid/1/?expiry=1.5", "expiry must be a whole number"),
    ("/rtc/ch/publisher/uid/1/?expiry=99999999999999999999", "expiry must be a whole number"),
    ("/rtm/" + "u" * 256 + "/", "256 bytes"),
    ("/rtm/bob/?expiry=-5", "expiry"),
    ("/rte/ch/publisher/uid/1/?expiry=x", "expiry"),
    ("/chat/app/?expiry=100000", "expiry"),
    ("/access_token?uid=1", "channel is required"),
    ("/access_token?channel=c&role=admin", "role must be one of"),
    ("/access_token?channel=c&uid=x", "uid must be an integer"),
    ("/access_token?channel=c&expiredTs=-3", "expiredTs must not be negative"),
    ("/v1/token", "channel_name is required"),
    ("/v1/token?channel_name=a%2Fb", "channel_name"),
]


@pytest.mark.parametrize("path, message", BAD_GETS)
def test_bad_get_is_400(client, bearer, path, message):
    r = client.get(path, headers=bearer())
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.json["code"] == "400"
    assert message in r.json["error"]


BAD_POSTS = [
    ("/fetch_rtc_token", {"uid": 1, "ChannelName": "c", "role": 3}, "role must be one of"),
    ("/fetch_rtc_token", {"uid": -1, "ChannelName": "c", "role": 1}, "uid must be an integer"),
    ("/fetch_rtc_token", {"uid": 1.5, "ChannelName": "c", "role": 1}, "uid must be an integer"),
    ("/fetch_rtc_token", {"uid": True, "ChannelName": "c", "role": 1}, "uid must be an integer"),
    ("/fetch_rtc_token", {"ChannelName": "c", "role": 1}, "uid must be an integer"),
    ("/fetch_rtc_token", {"uid": 1, "role": 1}, "ChannelName is required"),
    ("/fetch_rtc_token", {"uid": 1, "ChannelName": ["c"], "role": 1}, "must be a string"),
    ("/fetch_rtc_token", {"uid": 1, "ChannelName": "c", "role": None}, "role must be one of"),
    ("/getToken", {"tokenType": "voice"}, "tokenType must be rtc, rtm or chat"),
    ("/getToken", {}, "tokenType must be rtc, rtm or chat"),
    ("/getToken", {"tokenType": "rtc", "channel": "c", "role": "publisher"}, "uid is required"),
    ("/getToken", {"tokenType": "rtc", "channel": "c", "role": "x", "uid": "1"}, "role must be one of"),
    ("/getToken", {"tokenType": "rtc", "role": "publisher", "uid": "1"}, "channel is required"),
    ("/getToken", {"tokenType": "rtc", "channel": "c", "role": 1, "uid": "1", "expire": "x"}, "expire"),
    ("/getToken", {"tokenType": "rtc", "channel": "c", "role": 1, "uid": "1", "expire": 1e9}, "expire"),
    ("/getToken", {"tokenType": "rtc", "channel": "c", "role": 1, "uid": {"a": 1}}, "uid must be"),
    ("/getToken", {"tokenType": "rtm"}, "rtmuid is required"),
    ("/getToken", {"tokenType": "rtm", "uid": ["x"]}, "uid must be"),
    ("/getToken", {"tokenType": "chat", "uid": 1.5}, "uid must be"),
    ("/generate-user-token", {"expire": 10}, "user_uuid is required"),
    ("/generate-user-token", {"user_uuid": "u", "expire": -1}, "expire must not be negative"),
    ("/generate-app-token", {"expire": 86401}, "expire must be at most"),
    ("/generate-app-token", {"expire": True}, "expire must be a whole number"),
]


@pytest.mark.parametrize("path", ["/getToken", "/generate-app-token"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_is_read_whatever_its_content_type(client, bearer, path, content_type):
    data = '{"tokenType": "chat", "expire": 60}'
    assert client.post(path, data=data, content_type=content_type, headers=bearer()).status_code == 200


@pytest.mark.parametrize("path, body, message", BAD_POSTS)
def test_bad_post_is_400(client, bearer, path, body, message):
    r = client.post(path, json=body, headers=bearer())
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.json["code"] == "400"
    assert message in r.json["error"]


@pytest.mark.parametrize("path", ["/fetch_rtc_token", "/getToken", "/generate-user-token", "/generate-app-token"])
@pytest.mark.parametrize("data, content_type, status", [
    ("uid=1", "application/x-www-form-urlencoded", 400),  # read as JSON whatever the type, as the Go servers do
    ("", None, 400),  # agora-token-service's own test: an empty body without a Content-Type is a 400
    ("{not json", "application/json", 400),
    ("[1, 2]", "application/json", 400),
    ("\"text\"", "application/json", 400),
    ("[" * 100_00 + "]" * 100_00, "application/json", 413),
    ("[" * 2000 + "]" * 2000, "application/json", 400),
    ("\xff\xfe", "application/json", 400),
])
def test_bad_bodies(client, bearer, path, data, content_type, status):
    r = client.post(path, data=data, content_type=content_type, headers=bearer())
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.json["code"] == str(status)
    assert r.json["error"]


def test_unknown_route_is_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json == {"error": "no such route", "code": "404"}


@pytest.mark.parametrize("method, path", [("GET", "/fetch_rtc_token"), ("POST", "/ping"),
                                          ("DELETE", "/rtm/bob/"), ("PUT", "/getToken")])
def test_wrong_method_is_json_405(client, method, path):
    r = client.open(path, method=method)
    assert r.status_code == 405
    assert r.json["code"] == "405"
    assert "Allow" in r.headers


def test_body_too_large_is_413(client, bearer):
    r = client.post("/getToken", json={"tokenType": "rtm", "uid": "x" * 10_000}, headers=bearer())
    assert r.status_code == 413
    assert r.json == {"error": "the request body is too large", "code": "413"}
