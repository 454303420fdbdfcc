"""The spec's published vectors, and the refusals every builder shares."""
import pytest

import tokens
from tests.credentials import APP_ID
from tests.credentials import APP_CERTIFICATE as CERT  # the short name these tests use
from tokens import Role, TokenError

FIXED = {"issue_ts": 1111111, "salt": 1}

RTC_VECTOR = (
    "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8"
    "IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj"
)
CHAT_VECTOR = (
    "007eJxTYNAIsnbS3v/A5t2TC6feR15r+6cq8bqAvfaW+tk/Vzz+p6xTYLA0N3B2NDZNSTUzSDYxMTMxTUpKTLVINDI0NTAzTDI2dv8iwBDB"
    "xMDAyADCrEDMCOZzMRhZWBgZmxgamRsDAB+lHrg="
)


def test_rtc_vector_reproduces():
    token = tokens.build_rtc_token(APP_ID, CERT, "7d72365eb983485397e3e3f9d460bdda", 2882341273,
                                   Role.SUBSCRIBER, 600, 600, **FIXED)
    assert token == RTC_VECTOR


def test_chat_vector_reproduces():
    assert tokens.build_chat_user_token(APP_ID, CERT, "2882341273", 600, **FIXED) == CHAT_VECTOR


@pytest.mark.parametrize("vector", [RTC_VECTOR, CHAT_VECTOR])
def test_vectors_parse_and_verify(vector):
    token = tokens.parse_token(vector)
    assert (token.app_id, token.issue_ts, token.expire, token.salt) == (APP_ID, 1111111, 600, 1)
    assert token.verify(CERT)
    assert not token.verify(CERT[:-1] + "0")


def test_rtc_vector_fields():
    (rtc,) = tokens.parse_token(RTC_VECTOR).services
    assert isinstance(rtc, tokens.ServiceRtc)
    assert (rtc.channel_name, rtc.uid, rtc.privileges) == ("7d72365eb983485397e3e3f9d460bdda", "2882341273", {1: 600})


def rtc(**kw):
    args = {"app_id": APP_ID, "app_certificate": CERT, "channel_name": "lobby", "uid": 1,
            "role": Role.PUBLISHER, "token_expire": 600}
    args.update(kw)
    return tokens.build_rtc_token(**args)


@pytest.mark.parametrize("kw, message", [
    ({"app_id": "x" * 32}, "app_id must be 32 hexadecimal"),
    ({"app_id": APP_ID[:-1]}, "app_id must be 32 hexadecimal"),
    ({"app_certificate": CERT + "0"}, "app_certificate must be 32 hexadecimal"),
    ({"app_certificate": None}, "app_certificate must be 32 hexadecimal"),
    ({"channel_name": ""}, "channel name is empty"),
    ({"channel_name": "a" * 64}, "64 bytes"),
    ({"channel_name": "é" * 32}, "64 bytes"),
    ({"channel_name": "a/b"}, "'/'"),
    ({"channel_name": "a\x00b"}, "'\\x00'"),
    ({"channel_name": 5}, "must be text"),
    ({"uid": -1}, "uid -1 is out of range 0…4294967295"),
    ({"uid": 2**32}, "uid 4294967296 is out of range"),
    ({"uid": True}, "not a boolean"),
    ({"uid": 1.5}, "not float"),
    ({"uid": ""}, "user account is empty"),
    ({"uid": "a" * 256}, "256 bytes"),
    ({"role": 3}, "role must be 1 (publisher) or 2 (subscriber)"),
    ({"token_expire": 0}, "at least 1 second"),
    ({"token_expire": -5}, "negative"),
    ({"token_expire": 86401}, "at most 86400"),
    ({"token_expire": "600"}, "whole number"),
    ({"privilege_expire": -1}, "negative"),
    ({"privilege_expire": 86401}, "at most 86400"),
    ({"issue_ts": -1}, "issue_ts"),
    ({"salt": 0}, "salt must be in 1…99999999"),
    ({"salt": 100_000_000}, "salt must be in"),
])
def test_rtc_refuses_bad_input(kw, message):
    with pytest.raises(TokenError) as info:
        rtc(**kw)
    assert message in str(info.value)


@pytest.mark.parametrize("kw", [
    {"channel_name": "a" * 63},
    {"channel_name": "All !#$%&()+-:;<=.>?@[]^_{}|~, 09"},
    {"channel_name": "*"},
    {"uid": 0}, {"uid": 2**32 - 1}, {"uid": "a" * 255},
    {"token_expire": 86400}, {"privilege_expire": 86400}, {"privilege_expire": 0},
])
def test_rtc_accepts_edges(kw):
    assert tokens.parse_token(rtc(**kw)).verify(CERT)


def test_uid_zero_is_written_empty():
    (service,) = tokens.parse_token(rtc(uid=0)).services
    assert service.uid == ""


def test_publisher_and_subscriber_privileges():
    (pub,) = tokens.parse_token(rtc(role=Role.PUBLISHER, privilege_expire=300)).services
    (sub,) = tokens.parse_token(rtc(role=Role.SUBSCRIBER, privilege_expire=300)).services
    assert pub.privileges == {1: 300, 2: 300, 3: 300, 4: 300}
    assert sub.privileges == {1: 300}


def test_fresh_salt_each_time():
    salts = {tokens.parse_token(rtc()).salt for _ in range(50)}
    assert len(salts) > 45
    assert all(1 <= s <= 99_999_999 for s in salts)
