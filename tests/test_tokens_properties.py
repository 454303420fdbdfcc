"""Properties of the token format (hypothesis), and the parser's refusals.

Round trips: build → parse → verify, every field compared. The parser, given anything at all
(bytes, text, base64 of junk, zlib of junk, truncated or bit-flipped real tokens), returns a
token or raises ``TokenError``, never another exception.
"""
from __future__ import annotations

import base64
import struct
import time
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import tokens
from tests.conftest import examples
from tests.credentials import APP_ID
from tests.credentials import APP_CERTIFICATE as CERT  # the short name these tests use
from tokens import Role, TokenError
from tokens.access_token import AccessToken, sign
from tokens.wire import pack_str

# Agora's documented alphabets, written out here rather than taken from the code under test.
CHANNEL_CHARS = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                 " !#$%&()+-:;<=.>?@[]^_{}|~,")
CHAT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-."

FEW = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])

hex32 = st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)
channels = st.text(CHANNEL_CHARS, min_size=1, max_size=63)
accounts = st.text(CHANNEL_CHARS, min_size=1, max_size=255)  # RTC user accounts


def is_rtm_user(text: str) -> bool:
    """Agora's RTM user id rule, for text already in the channel alphabet."""
    return 0 < len(text) < 64 and text[0] != " " and text not in ("0", "null")


rtm_users = st.text(CHANNEL_CHARS, min_size=1, max_size=63).filter(is_rtm_user)
chat_users = st.text(CHAT_CHARS, min_size=1, max_size=64)
# RTM 2 resource names have no Agora rule held here: any Unicode (no lone surrogates), 1…255 bytes.
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60).filter(
    lambda s: len(s.encode()) <= 255)
uids = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 2**32 - 1]), accounts)
lifetimes = st.integers(1, 86_400)
privilege_lifetimes = st.integers(0, 86_400)
headers = st.fixed_dictionaries({"issue_ts": st.integers(0, 2**32 - 1), "salt": st.integers(1, 99_999_999)})


def uid_text(uid: int | str) -> str:
    return ("" if uid == 0 else str(uid)) if isinstance(uid, int) else uid


def parsed(token: str, app_id: str, app_certificate: str, expire: int, header: dict) -> AccessToken:
    """Parse ``token``, check it verifies and carries the header fields; return it."""
    t = tokens.parse_token(token)
    assert t.verify(app_certificate)
    assert not t.verify(("0" if app_certificate[0] != "0" else "1") + app_certificate[1:])
    assert (t.app_id, t.issue_ts, t.expire, t.salt) == (app_id, header["issue_ts"], expire, header["salt"])
    return t


# -- round trips ------------------------------------------------------------------------------

@FEW
@given(app_id=hex32, cert=hex32, channel=channels, uid=uids, role=st.sampled_from(Role),
       expire=lifetimes, privilege=privilege_lifetimes, header=headers)
def test_rtc_round_trip(app_id, cert, channel, uid, role, expire, privilege, header):
    token = tokens.build_rtc_token(app_id, cert, channel, uid, role, expire, privilege, **header)
    (rtc,) = parsed(token, app_id, cert, expire, header).services
    ids = [1, 2, 3, 4] if role is Role.PUBLISHER else [1]
    assert rtc == tokens.ServiceRtc(channel_name=channel, uid=uid_text(uid), privileges=dict.fromkeys(ids, privilege))


@FEW
@given(channel=channels, uid=uids, expire=lifetimes, each=st.lists(privilege_lifetimes, min_size=4, max_size=4),
       header=headers)
def test_rtc_with_privileges_round_trip(channel, uid, expire, each, header):
    token = tokens.build_rtc_token_with_privileges(APP_ID, CERT, channel, uid, expire, *each, **header)
    (rtc,) = parsed(token, APP_ID, CERT, expire, header).services
    assert (rtc.channel_name, rtc.uid, rtc.privileges) == (channel, uid_text(uid), dict(zip([1, 2, 3, 4], each, strict=True)))


@FEW
@given(channel=channels, uid=uids, role=st.sampled_from(Role), expire=lifetimes,
       rtm_user=st.none() | rtm_users, rtm_expire=st.none() | privilege_lifetimes, header=headers)
def test_rtc_rtm_round_trip(channel, uid, role, expire, rtm_user, rtm_expire, header):
    if rtm_user is None and not is_rtm_user(uid_text(uid)):  # the uid cannot be the RTM user: name one
        rtm_user = "any"
    token = tokens.build_rtc_rtm_token(APP_ID, CERT, channel, uid, role, expire, rtm_user=rtm_user,
                                       rtm_expire=rtm_expire, issue_ts=header["issue_ts"], salt=header["salt"])
    rtc, rtm = parsed(token, APP_ID, CERT, expire, header).services
    assert (rtc.channel_name, rtc.uid) == (channel, uid_text(uid))
    assert rtm == tokens.ServiceRtm(user_id=rtm_user if rtm_user is not None else uid_text(uid),
                                    privileges={1: expire if rtm_expire is None else rtm_expire})


@FEW
@given(user=rtm_users, expire=lifetimes, header=headers)
def test_rtm_round_trip(user, expire, header):
    (rtm,) = parsed(tokens.build_rtm_token(APP_ID, CERT, user, expire, **header), APP_ID, CERT, expire, header).services
    assert rtm == tokens.ServiceRtm(user_id=user, privileges={1: expire})


permissions = st.dictionaries(
    st.sampled_from(tokens.Rtm2Resource),
    st.dictionaries(st.sampled_from(tokens.Rtm2Permission), st.lists(names, max_size=3), min_size=1),
    max_size=5)


@FEW
@given(user=rtm_users, expire=lifetimes, perms=permissions, header=headers)
def test_rtm2_round_trip(user, expire, perms, header):
    token = tokens.build_rtm2_token(APP_ID, CERT, user, expire, perms, **header)
    (rtm2,) = parsed(token, APP_ID, CERT, expire, header).services
    assert rtm2 == tokens.ServiceRtm2(user_id=user, permissions=perms, privileges={1: expire})


@FEW
@given(user=chat_users, expire=lifetimes, header=headers)
def test_chat_user_round_trip(user, expire, header):
    token = tokens.build_chat_user_token(APP_ID, CERT, user, expire, **header)
    (chat,) = parsed(token, APP_ID, CERT, expire, header).services
    assert chat == tokens.ServiceChat(user_id=user, privileges={1: expire})


@FEW
@given(expire=lifetimes, header=headers)
def test_chat_app_round_trip(expire, header):
    (chat,) = parsed(tokens.build_chat_app_token(APP_ID, CERT, expire, **header), APP_ID, CERT, expire, header).services
    assert chat == tokens.ServiceChat(user_id="", privileges={2: expire})


# -- identifiers outside Agora's alphabets are refused -------------------------------------------

def with_one_outside(alphabet: str) -> st.SearchStrategy[str]:
    """Text in ``alphabet`` with one character from outside it somewhere (any Unicode, lone
    surrogates, controls, line and paragraph separators included)."""
    outside = st.characters(blacklist_categories=()).filter(lambda c: c not in alphabet)
    inside = st.text(alphabet, max_size=20)
    return st.tuples(inside, outside, inside).map("".join)


@MANY
@given(value=with_one_outside(CHANNEL_CHARS))
@example("lobby\n")
@example("lo\u2028bby")
@example("\x00")
@example("caf\u00e9")
@example("a*")
def test_channel_outside_the_alphabet_is_refused(value):
    assume(value != tokens.WILDCARD_CHANNEL)  # "*" alone: the wildcard channel of a token
    with pytest.raises(TokenError):
        tokens.check_channel(value)
    with pytest.raises(TokenError):
        tokens.build_rtc_token(APP_ID, CERT, value, 1, Role.PUBLISHER, 600)


@MANY
@given(value=with_one_outside(CHANNEL_CHARS))
@example("alice\r\n")
@example("\u00e9")
def test_account_and_rtm_user_outside_the_alphabet_are_refused(value):
    for check in (tokens.check_account, tokens.check_rtm_user):
        with pytest.raises(TokenError):
            check(value)
    with pytest.raises(TokenError):
        tokens.build_rtc_token(APP_ID, CERT, "lobby", value, Role.PUBLISHER, 600)
    with pytest.raises(TokenError):
        tokens.build_rtm_token(APP_ID, CERT, value, 600)


@MANY
@given(value=with_one_outside(CHAT_CHARS))
@example("Bob")
@example("bob!")
@example("b ob")
def test_chat_user_outside_the_alphabet_is_refused(value):
    with pytest.raises(TokenError):
        tokens.check_chat_user(value)
    with pytest.raises(TokenError):
        tokens.build_chat_user_token(APP_ID, CERT, value, 600)


@FEW
@given(channel=st.text(CHANNEL_CHARS, min_size=64, max_size=300), rtm=st.text(CHANNEL_CHARS, min_size=64),
       account=st.text(CHANNEL_CHARS, min_size=256, max_size=400), chat=st.text(CHAT_CHARS, min_size=65))
def test_identifiers_over_their_length_are_refused(channel, rtm, account, chat):
    for check, value in ((tokens.check_channel, channel), (tokens.check_rtm_user, rtm),
                         (tokens.check_account, account), (tokens.check_chat_user, chat)):
        with pytest.raises(TokenError):
            check(value)


# -- the parser on anything ---------------------------------------------------------------------

def parses_or_refuses(text) -> None:
    """The parser's whole contract on untrusted input: a token, or TokenError. A token verifies
    exactly when its signed bytes and signature are those of a token really made with CERT."""
    try:
        token = tokens.parse_token(text)
    except TokenError as e:
        assert str(e)  # noqa: PT017 (refusing is one of two right outcomes: not pytest.raises)
        return
    token.to_dict()  # what was parsed can be shown and checked without surprises
    assert token.verify(CERT) is ((token.signature, token.signing_info) in GENUINE)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@MANY
@given(st.binary(max_size=300))
def test_parser_on_bytes(data):
    with pytest.raises(TokenError):
        tokens.parse_token(data)
    parses_or_refuses(data.decode("latin-1"))


@MANY
@given(st.text(max_size=300))
@example("007")
@example("007=")
@example("007\u00e9")
@example("007\ud800")
def test_parser_on_text(text):
    parses_or_refuses(text)
    parses_or_refuses("007" + text)


@MANY
@given(st.binary(max_size=400))
def test_parser_on_base64_of_junk(data):
    parses_or_refuses("007" + b64(data))


@MANY
@given(st.binary(max_size=400))
def test_parser_on_zlib_of_junk(data):
    parses_or_refuses("007" + b64(zlib.compress(data)))


@MANY
@given(app_id=st.text(max_size=40), count=st.integers(0, 0xFFFF),
       types=st.lists(st.integers(0, 12), max_size=4), tail=st.binary(max_size=200))
def test_parser_on_a_real_header_and_junk_services(app_id, count, types, tail):
    """Reach the service parsers: a well-formed header, then service types and junk fields."""
    body = pack_str(app_id) + struct.pack("<IIIH", 1, 2, 3, count)
    body += b"".join(struct.pack("<H", t) for t in types) + tail
    parses_or_refuses("007" + b64(zlib.compress(struct.pack("<H", 32) + bytes(32) + body)))


def real_tokens() -> list[str]:
    h = {"issue_ts": 1111111, "salt": 1}
    return [
        tokens.build_rtc_token(APP_ID, CERT, "lobby", 42, Role.PUBLISHER, 600, **h),
        tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", "alice", Role.SUBSCRIBER, 600, **h),
        tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {0: {0: ["a", "b"], 1: ["c"]}, 4: {1: ["d"]}}, **h),
        tokens.build_apaas_room_user_token(APP_ID, CERT, "room", "user", 2, 600, **h),
        tokens.build_conversational_ai_token(APP_ID, CERT, "agent", 7, Role.PUBLISHER, 600, **h),
    ]

REAL = real_tokens()
GENUINE = {(t.signature, t.signing_info) for t in map(tokens.parse_token, REAL)}


@MANY
@given(token=st.sampled_from(REAL), data=st.data())
def test_parser_on_truncated_tokens(token, data):
    cut = data.draw(st.integers(0, len(token) - 1))
    parses_or_refuses(token[:cut])
    content = zlib.decompress(base64.b64decode(token[3:]))
    end = data.draw(st.integers(0, len(content) - 1))  # truncate inside: a valid zlib of short content
    parses_or_refuses("007" + b64(zlib.compress(content[:end])))


@MANY
@given(token=st.sampled_from(REAL), data=st.data())
def test_parser_on_bit_flips(token, data):
    compressed = bytearray(base64.b64decode(token[3:]))
    bit = data.draw(st.integers(0, len(compressed) * 8 - 1))
    compressed[bit // 8] ^= 1 << (bit % 8)
    parses_or_refuses("007" + b64(bytes(compressed)))
    # Flip inside the content and compress again, so the flip gets past adler32 to the parser.
    content = bytearray(zlib.decompress(base64.b64decode(token[3:])))
    bit = data.draw(st.integers(0, len(content) * 8 - 1))
    content[bit // 8] ^= 1 << (bit % 8)
    flipped = "007" + b64(zlib.compress(bytes(content)))
    parses_or_refuses(flipped)  # which, if it parses, must not verify: every content bit is signed


# -- explicit refusals --------------------------------------------------------------------------

def refused_quickly(text: str, message: str) -> None:
    """Refused with ``message`` in under 0.5 s of this thread's CPU time (a busy machine's other
    processes do not count), allocating under 1 MiB on the way."""
    tracemalloc.start()
    try:
        start = time.thread_time()
        with pytest.raises(TokenError, match=message):
            tokens.parse_token(text)
        elapsed = time.thread_time() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5, f"took {elapsed:.3f} s"
    assert peak < 1 << 20, f"peak {peak} bytes"


def test_zlib_bomb_is_refused():
    bomb = "007" + b64(zlib.compress(b"\0" * 50_000_000))  # ~65,000 characters
    refused_quickly(bomb, "characters long")


def test_zlib_bomb_under_the_length_limit_stops_at_the_inflate_cap():
    bomb = "007" + b64(zlib.compress(b"\0" * 20_000_000, 9))  # ~26,000 characters, 20 MB inside
    assert len(bomb) < tokens.access_token.MAX_TOKEN_CHARS
    refused_quickly(bomb, "inflates past")


def test_ten_megabytes_of_text_is_refused():
    refused_quickly("007" + "A" * 10_000_000, "characters long")


@pytest.mark.parametrize("text", ["006" + REAL[0][3:], "008" + REAL[0][3:], REAL[0][1:], "", "7"])
def test_wrong_version_prefix(text):
    with pytest.raises(TokenError, match="must start with '007'"):
        tokens.parse_token(text)


@pytest.mark.parametrize("text", ["007!!!!", "007" + REAL[0][3:-1], "007eJx TYBB", "007" + REAL[0][3:] + "\n",
                                  "007eJx-_TYBB", "007\u00e9\u00e9\u00e9\u00e9"])
def test_bad_base64(text):
    with pytest.raises(TokenError, match="not valid base64"):
        tokens.parse_token(text)


def test_not_zlib():
    with pytest.raises(TokenError, match="not a valid zlib stream"):
        tokens.parse_token("007" + b64(b"\x00" * 40))


def test_unknown_service_type_after_a_known_one_keeps_the_known_one():
    rtc = tokens.ServiceRtc(channel_name="lobby", uid="42", privileges={1: 600})
    token = AccessToken(APP_ID, 1111111, 600, 1, [rtc])
    signing_info = bytearray(token.pack_signing_info())
    count_at = 2 + 32 + 12  # bytes(app_id), then issue_ts, expire, salt: the service count
    signing_info[count_at:count_at + 2] = struct.pack("<H", 2)
    signing_info += struct.pack("<HH", 99, 0) + b"fields of a service from the future"
    signature = sign(CERT, 1111111, 1, bytes(signing_info))
    text = "007" + b64(zlib.compress(struct.pack("<H", len(signature)) + signature + signing_info))
    parsed_token = tokens.parse_token(text)
    assert parsed_token.services == [rtc]
    assert parsed_token.verify(CERT)


def test_verify_true_for_the_certificate_false_for_any_other():
    # (verify compares with hmac.compare_digest: constant time, whatever the inputs)
    token = tokens.parse_token(REAL[0])
    assert token.verify(CERT) is True
    assert token.verify(CERT.lower()) is False  # the certificate is signed as text: case matters
    assert token.verify("0" * 32) is False
    assert token.verify("") is False


@pytest.mark.parametrize("cert", [None, 5, CERT.encode(), "\ud800" * 32], ids=["None", "int", "bytes", "surrogates"])
def test_verify_refuses_what_is_not_a_certificate(cert):
    with pytest.raises(TokenError):
        tokens.parse_token(REAL[0]).verify(cert)


@FEW
@given(value=st.one_of(st.text(st.characters(blacklist_categories=()), max_size=70),  # lone surrogates too
                       st.text(CHANNEL_CHARS + "*", max_size=70), st.text("0123456789abcdefABCDEF", max_size=17)))
@example("\ud800")
@example("lobby\udfff")
@example("*")
@example("0")
@example("null")
@example(" lobby")
@example("0123456789abcdef")
def test_builders_take_exactly_the_text_agoras_rules_allow(value):
    """Any text as a channel, account, RTM user or certificate: a token that verifies when Agora's
    rule (written out here, not taken from tokens/) allows it, else TokenError."""
    in_alphabet = set(value) <= set(CHANNEL_CHARS)
    hex16 = len(value) == 16 and set(value) <= set("0123456789abcdefABCDEF")
    cases = [
        (value == "*" or (0 < len(value) < 64 and in_alphabet), CERT,
         lambda: tokens.build_rtc_token(APP_ID, CERT, value, 1, Role.PUBLISHER, 600)),
        (0 < len(value) <= 255 and in_alphabet, CERT,
         lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", value, Role.PUBLISHER, 600)),
        (in_alphabet and is_rtm_user(value), CERT, lambda: tokens.build_rtm_token(APP_ID, CERT, value, 600)),
        (hex16, value * 2, lambda: tokens.build_chat_user_token(APP_ID, value * 2, "u", 600)),
    ]
    for allowed, certificate, build in cases:
        if allowed:
            assert tokens.parse_token(build()).verify(certificate)
        else:
            with pytest.raises(TokenError):
                build()
