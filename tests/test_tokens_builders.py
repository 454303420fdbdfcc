"""Every builder: build → parse → verify → compare, and each builder's own refusals."""
from __future__ import annotations

import hashlib
import hmac
import re

import pytest

import tokens
from tests.credentials import APP_ID
from tests.credentials import APP_CERTIFICATE as CERT  # the short name these tests use
from tokens import Role, TokenError
from tokens.access_token import AccessToken, hmac_sha256

H = {"issue_ts": 1_700_000_000, "salt": 4242}
PUBLISHER = {1: 300, 2: 300, 3: 300, 4: 300}


def round_trip(token: str, expire: int = 600) -> list[tokens.Service]:
    """Parse, verify with the certificate (and not with another), check the header; services."""
    parsed = tokens.parse_token(token)
    assert parsed.verify(CERT)
    assert not parsed.verify(CERT.replace("5", "6"))
    assert (parsed.app_id, parsed.issue_ts, parsed.expire, parsed.salt) == (APP_ID, H["issue_ts"], expire, H["salt"])
    return parsed.services


def rtc(uid="42", privileges=None) -> tokens.ServiceRtc:
    return tokens.ServiceRtc(channel_name="lobby", uid=uid, privileges=privileges or PUBLISHER)


def rtm(user="42", login=600) -> tokens.ServiceRtm:
    return tokens.ServiceRtm(user_id=user, privileges={1: login})

CASES = {
    "rtc publisher uid": (
        lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", 42, Role.PUBLISHER, 600, 300, **H),
        [rtc()]),
    "rtc subscriber account": (
        lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", "alice", Role.SUBSCRIBER, 600, 300, **H),
        [rtc("alice", {1: 300})]),
    "rtc uid 0, role as int": (
        lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", 0, 2, 600, **H),
        [rtc("", {1: 0})]),
    "rtc with privileges": (
        lambda: tokens.build_rtc_token_with_privileges(APP_ID, CERT, "lobby", 42, 600, 10, 20, 30, 40, **H),
        [rtc(privileges={1: 10, 2: 20, 3: 30, 4: 40})]),
    "rtc + rtm": (
        lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 42, Role.PUBLISHER, 600, 300, **H),
        [rtc(), rtm()]),
    "rtc + rtm, own user and lifetime": (
        lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 0, Role.PUBLISHER, 600, 300, rtm_user="bob",
                                           rtm_expire=60, **H),
        [rtc(""), rtm("bob", 60)]),
    "rtm": (lambda: tokens.build_rtm_token(APP_ID, CERT, "bob", 600, **H), [rtm("bob")]),
    "rtm2": (
        lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {
            tokens.Rtm2Resource.USERS: {tokens.Rtm2Permission.WRITE: ["carol"]},
            tokens.Rtm2Resource.MESSAGE_CHANNELS: {tokens.Rtm2Permission.WRITE: ["news"],
                                                   tokens.Rtm2Permission.READ: ["news", "lobby"]},
        }, **H),
        [tokens.ServiceRtm2(user_id="bob", privileges={1: 600},
                            permissions={0: {0: ["news", "lobby"], 1: ["news"]}, 4: {1: ["carol"]}})]),
    "rtm2 without permissions": (
        lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {}, **H),
        [tokens.ServiceRtm2(user_id="bob", privileges={1: 600})]),
    "chat user": (lambda: tokens.build_chat_user_token(APP_ID, CERT, "bob", 600, **H),
                  [tokens.ServiceChat(user_id="bob", privileges={1: 600})]),
    "chat app": (lambda: tokens.build_chat_app_token(APP_ID, CERT, 600, **H),
                 [tokens.ServiceChat(privileges={2: 600})]),
    "fpa": (lambda: tokens.build_fpa_token(APP_ID, CERT, 600, **H), [tokens.ServiceFpa(privileges={1: 0})]),
    "apaas room user": (
        lambda: tokens.build_apaas_room_user_token(APP_ID, CERT, "room-1", "user-1", 2, 600, **H),
        [rtm("user-1"),  # written in type order: RTM 2, Chat 5, APaaS 7
         tokens.ServiceChat(user_id=hashlib.md5(b"user-1").hexdigest(), privileges={1: 600}),
         tokens.ServiceApaas(room_uuid="room-1", user_uuid="user-1", role=2)]),
    "apaas user": (lambda: tokens.build_apaas_user_token(APP_ID, CERT, "user-1", 600, **H),
                   [tokens.ServiceApaas(user_uuid="user-1", privileges={2: 600})]),
    "apaas app": (lambda: tokens.build_apaas_app_token(APP_ID, CERT, 600, **H),
                  [tokens.ServiceApaas(privileges={3: 600})]),
    "conversational ai": (
        lambda: tokens.build_conversational_ai_token(APP_ID, CERT, "lobby", 42, Role.PUBLISHER, 600, 300, **H),
        [rtc(), rtm(), tokens.ServiceConversationalAi()]),
    "speech to text": (
        lambda: tokens.build_speech_to_text_token(APP_ID, CERT, "lobby", "42", Role.SUBSCRIBER, 600, 300,
                                                  rtm_user="stt-bot", **H),
        [rtc(privileges={1: 300}), rtm("stt-bot"), tokens.ServiceSpeechToText()]),
}


@pytest.mark.parametrize("name", CASES)
def test_round_trip(name):
    build, services = CASES[name]
    assert round_trip(build()) == services


def test_fpa_lives_a_day_by_default():
    assert tokens.parse_token(tokens.build_fpa_token(APP_ID, CERT)).expire == 86_400


def test_services_are_written_sorted_by_type_stably():
    token = AccessToken(APP_ID, 1, 600, 1)
    for service in (tokens.ServiceChat(user_id="c"), rtm("b"), rtc(), rtm("a")):
        token.add_service(service)
    parsed = tokens.parse_token(token.build(CERT))
    assert [(s.TYPE, getattr(s, "user_id", None)) for s in parsed.services] == [
        (1, None), (2, "b"), (2, "a"), (5, "c")]
    assert parsed.verify(CERT)


def test_streaming_and_fcdn_round_trip():
    """No builder writes them; the parser and AccessToken still handle them."""
    token = AccessToken(APP_ID, 1, 600, 1, [
        tokens.ServiceStreaming(channel_name="live", uid="7", privileges={1: 60, 2: 60}),
        tokens.ServiceFcdn(channel_name="live", uid="", privileges={2: 60}),
    ])
    parsed = tokens.parse_token(token.build(CERT))
    assert parsed.services == token.services and parsed.verify(CERT)


def test_to_dict_names_services_fields_and_privileges():
    token = tokens.parse_token(CASES["apaas room user"][0]())
    report = token.to_dict()
    assert report["expires_at"] == H["issue_ts"] + 600
    assert report["services"][2] == {"type": 7, "name": "apaas", "room_uuid": "room-1", "user_uuid": "user-1",
                                     "role": 2, "privileges": {}}
    assert report["services"][0]["privileges"] == {"login": 600}
    assert report["services"][1]["privileges"] == {"user": 600}
    rtm2 = tokens.parse_token(CASES["rtm2"][0]()).to_dict()["services"][0]
    assert rtm2["permissions"] == {"message_channels": {"read": ["news", "lobby"], "write": ["news"]},
                                   "users": {"write": ["carol"]}}


def test_built_token_cannot_be_verified_before_parsing():
    with pytest.raises(TokenError, match="only a parsed token"):
        AccessToken(APP_ID, 1, 600, 1, [rtc()]).verify(CERT)


def test_empty_token_is_refused():
    with pytest.raises(TokenError, match="at least one service"):
        AccessToken(APP_ID, 1, 600, 1).build(CERT)


@pytest.mark.parametrize("key", [b"\x01\x00\x00\x00", bytes(range(32)), b"", bytes(64)])
@pytest.mark.parametrize("msg", [b"", b"x" * 31, bytes(range(200))])
def test_hmac_sha256_is_hmac(key, msg):
    assert hmac_sha256(key, msg) == hmac.digest(key, msg, "sha256")


@pytest.mark.parametrize("build, message", [
    (lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 0, 1, 600), "uid 0 names no RTM user"),
    (lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 1, 1, 600, rtm_expire=-1), "RTM lifetime is negative"),
    (lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 1, 1, 600, rtm_user=""), "RTM user id is empty"),
    (lambda: tokens.build_rtc_token_with_privileges(APP_ID, CERT, "lobby", 1, 600, 1, 2, 3, 86_401),
     "publish data privilege lifetime is 86401 s"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, "", 600), "RTM user id is empty"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, 5, 600), "RTM user id must be text"),
    (lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {0: {0: "lobby"}}), "permissions must map"),
    (lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {70_000: {0: ["a"]}}), "permissions must map"),
    (lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, None), "permissions must map"),
    (lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {0: {0: [""]}}), "RTM resource name is empty"),
    (lambda: tokens.build_chat_user_token(APP_ID, CERT, "x" * 256, 600), "Chat user id is 256 characters"),
    (lambda: tokens.build_chat_app_token(APP_ID, CERT, 0), "at least 1 second"),
    (lambda: tokens.build_fpa_token(APP_ID, "nope"), "app_certificate must be 32 hexadecimal"),
    (lambda: tokens.build_fpa_token(APP_ID, ["unhashable"]), "must be text"),
    (lambda: tokens.build_apaas_room_user_token(APP_ID, CERT, "r", "u", 40_000, 600), "16-bit integer"),
    (lambda: tokens.build_apaas_room_user_token(APP_ID, CERT, "", "u", 1, 600), "room uuid is empty"),
    (lambda: tokens.build_apaas_user_token(APP_ID, CERT, "", 600), "user uuid is empty"),
    (lambda: tokens.build_conversational_ai_token(APP_ID, CERT, "lobby", 1, 9, 600), "role must be 1"),
    (lambda: tokens.build_speech_to_text_token(APP_ID, CERT, "lob/by", 1, 1, 600), "'/'"),
    (lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby\ud800", 1, 1, 600), "lone surrogate"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, "\udfff", 600), "RTM user id is not valid Unicode"),
    (lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", 1, [1], 600), "role must be 1"),
])
def test_builder_refuses(build, message):
    with pytest.raises(TokenError, match=message):
        build()


# Each builder holds its identifiers to the matching rule (the rules' own tables: test_identifiers.py).
@pytest.mark.parametrize("build, message", [
    (lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", "al\nice", 1, 600), "user account may hold only"),
    (lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", "a" * 256, 1, 600), "user account is 256 bytes"),
    (lambda: tokens.build_rtc_token(APP_ID, CERT, "lob\rby", 1, 1, 600), "channel name may hold only"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, "0", 600), "uid 0 means any uid"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, " bob", 600), "starts with a space"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, "b" * 64, 600), "RTM user id is 64 bytes"),
    (lambda: tokens.build_rtm_token(APP_ID, CERT, "bob\x00", 600), "RTM user id may hold only"),
    (lambda: tokens.build_rtm2_token(APP_ID, CERT, "null", 600, {}), "'null'"),
    (lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 1, 1, 600, rtm_user="0"), "uid 0 means any uid"),
    (lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", "0", 1, 600), "uid 0 means any uid"),
    (lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", "a" * 64, 1, 600), "RTM user id is 64 bytes"),
    (lambda: tokens.build_conversational_ai_token(APP_ID, CERT, "lobby", 1, 1, 600, rtm_user=" a"), "space"),
    (lambda: tokens.build_speech_to_text_token(APP_ID, CERT, "lobby", 1, 1, 600, rtm_user="a\u2028"),
     "RTM user id may hold only"),
    (lambda: tokens.build_chat_user_token(APP_ID, CERT, "Bob", 600), "lowercase: use 'bob'"),
    (lambda: tokens.build_chat_user_token(APP_ID, CERT, "bob!", 600), "got '!'"),
    (lambda: tokens.build_chat_user_token(APP_ID, CERT, "b" * 65, 600), "65 characters"),
])
def test_builder_holds_identifiers_to_agoras_rules(build, message):
    with pytest.raises(TokenError, match=message):
        build()


def test_builders_take_identifiers_at_the_limits():
    rtm = tokens.build_rtc_rtm_token(APP_ID, CERT, "c" * 63, "a" * 255, 1, 600, rtm_user="r" * 63, **H)
    assert [getattr(s, "channel_name", None) or s.user_id for s in round_trip(rtm)] == ["c" * 63, "r" * 63]
    (chat,) = round_trip(tokens.build_chat_user_token(APP_ID, CERT, "u" * 64, 600, **H))
    assert chat.user_id == "u" * 64


def test_the_role_spellings_message_names_exactly_the_table():
    assert sorted(re.split(r", | or ", tokens.ROLE_SPELLINGS)) == sorted(tokens.ROLES)
    assert set(tokens.ROLES.values()) == set(Role)
