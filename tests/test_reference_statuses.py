"""The statuses the reference servers' own tests assert, asserted here for the same requests.

agora-token-service (AgoraIO-Community, service/endpoints_test.go) is the one whose tests pin
statuses; each row below is one of its assertions, sent with a JWT our policy grants (the
'ops' group of tests/data/policy.yaml), so that only the contract decides. Where the service
deliberately answers otherwise, the README's compatibility section says so.
"""
from __future__ import annotations

import pytest

GETS = [
    ("/rtc/fsda/publisher/uid/0/", 200),
    ("/rtc/fsda/publisher/uid//", 200),  # an empty uid is uid 0
    ("/rtc/fsda/publisher/uid/test/", 400),
    ("/rtc/fsda/publisher/uid/0/?expiry=failing", 400),
    ("/rtc/fsda/publisher/userAccount/0/", 200),
    ("/rtc/fsda/publisher/nonsense/0/", 400),
    ("/rtm/username/", 200),
    ("/rtm/0/", 400),  # uid 0 means any uid in RTC; it is no RTM user
    ("/rtm/username/?expiry=fail", 400),
    ("/chat/app/", 200),
    ("/chat/account/username/", 200),
    ("/chat/account/", 404),
    ("/chat/invalid/", 404),
    ("/chat/account/username/?expiry=600", 200),
    ("/chat/account/username/?expiry=fail", 400),
    ("/rte/fsda/publisher/uid/0/rtmid/", 200),
    ("/rte/fsda/publisher/uid/2345/", 200),
    ("/rte/fsda/publisher/uid/0/", 400),  # the RTM user defaults to the uid, 0
    ("/ping", 200),
]
POSTS = [  # POST /getToken bodies
    ({"tokenType": "rtc", "channel": "fsda", "role": "publisher", "uid": "0"}, 200),
    ({"tokenType": "rtm", "uid": "username"}, 200),
    ({"tokenType": "rtm", "uid": "username", "channel": "fsda"}, 200),
    ({"tokenType": "chat"}, 200),
    ({"tokenType": "chat", "uid": "username"}, 200),
    ({"channel": "fsda", "uid": "0"}, 400),  # no tokenType
    ({"tokenType": "unknown", "uid": "0"}, 400),
    ({"tokenType": "rtc", "role": "publisher", "uid": "0"}, 400),  # no channel
    ({"tokenType": "rtm"}, 400),  # no uid
]


@pytest.mark.parametrize("path, status", GETS)
def test_get_answers_as_agora_token_service_asserts(client, bearer, path, status):
    r = client.get(path, headers=bearer())
    assert r.status_code == status, r.get_data(as_text=True)


@pytest.mark.parametrize("body, status", POSTS)
def test_get_token_answers_as_agora_token_service_asserts(client, bearer, body, status):
    assert client.post("/getToken", json=body, headers=bearer()).status_code == status


def test_an_empty_body_without_a_content_type_is_400(client, bearer):
    r = client.post("/getToken", data=b"", headers=bearer())
    assert r.status_code == 400 and r.json["code"] == "400"
