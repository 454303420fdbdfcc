"""Agora's identifier rules, one table per kind: what each check accepts, and what it refuses
with which words."""
import pytest

import tokens
from tokens import TokenError

PUNCTUATION = "!#$%&()+-:;<=.>?@[]^_{}|~,"
ALL_ALLOWED = "azAZ09 " + PUNCTUATION  # every character the channel alphabet allows

# Refused by channel names, accounts and RTM user ids alike: (value, words in the message).
OUTSIDE_THE_ALPHABET = [
    ("a\x00b", r"may hold only .*; got '\\x00'"),
    ("a\rb", r"got '\\r'"),
    ("a\nb", r"got '\\n'"),
    ("a\u2028b", r"got '\\u2028'"),
    ("a\tb", r"got '\\t'"),
    ("caf\u00e9", "got 'é'"),
    ("\u4e2d", "got '中'"),
    ("emoji\U0001F600", "got '😀'"),
    ('say"hi"', "got '\"'"),
    ("it's", "got \"'\""),
    ("a/b", "got '/'"),
    ("a\\b", r"got '\\\\'"),
    ("a*b", r"got '\*'"),
    ("back`tick", "got '`'"),
]
NOT_TEXT = [(None, "must be text"), (42, "must be text"), (b"bytes", "must be text"), ("", "is empty"),
            ("a\ud800", "lone surrogate")]


def ok(check, value):
    assert check(value) is value


def refused(check, value, message):
    with pytest.raises(TokenError, match=message):
        check(value)


# -- channel names: fewer than 64 bytes, the alphabet ------------------------------------------

@pytest.mark.parametrize("value", ["a", "lobby", "x" * 63, ALL_ALLOWED, " leading and trailing ", "0", "null",
                                   "Room #1 (EU) [x] {y} <z> a=b; c:d, e|f ~g ^h %i &j $k @l ?m !n", "*"])
def test_channel_accepted(value):
    ok(tokens.check_channel, value)


@pytest.mark.parametrize("value, message", OUTSIDE_THE_ALPHABET + NOT_TEXT + [
    ("x" * 64, "channel name is 64 bytes; Agora allows fewer than 64"),
    ("x" * 1000, "is 1000 bytes"),
    ("\u00e9" * 32, "is 64 bytes"),  # 32 characters, 64 bytes of UTF-8
    ("\u00e9" * 31, "got 'é'"),  # 62 bytes: short enough, still outside the alphabet
    ("**", r"got '\*'"),  # only "*" alone is the wildcard
])
def test_channel_refused(value, message):
    refused(tokens.check_channel, value, message)


def test_channel_message_names_the_alphabet():
    with pytest.raises(TokenError) as e:
        tokens.check_channel("bad\nname")
    assert str(e.value) == (f"channel name may hold only a-z, A-Z, 0-9, space and {PUNCTUATION} ; "
                            "got '\\n'")


# -- RTC user accounts: 1…255 bytes, the alphabet ----------------------------------------------

@pytest.mark.parametrize("value", ["a", "alice", "0", "null", " leading space", "x" * 63, "x" * 64, "x" * 255,
                                   ALL_ALLOWED, "user@example.com"])
def test_account_accepted(value):
    ok(tokens.check_account, value)


@pytest.mark.parametrize("value, message", OUTSIDE_THE_ALPHABET + NOT_TEXT + [
    ("x" * 256, "user account is 256 bytes; Agora allows at most 255"),
    ("\u00e9" * 128, "is 256 bytes"),
])
def test_account_refused(value, message):
    refused(tokens.check_account, value, message)


def test_account_message_uses_the_callers_name():
    with pytest.raises(TokenError, match=r"^userAccount may hold only"):
        tokens.check_account("a\nb", "userAccount")


# -- RTM user ids: fewer than 64 bytes, the alphabet, no leading space, not "null" or "0" ------

@pytest.mark.parametrize("value", ["a", "bob", "42", "00", "0 ", "x" * 63, "trailing space ", "in side",
                                   "Null", "nulls", ALL_ALLOWED.replace(" ", "")])
def test_rtm_user_accepted(value):
    ok(tokens.check_rtm_user, value)


@pytest.mark.parametrize("value, message", OUTSIDE_THE_ALPHABET + NOT_TEXT + [
    ("x" * 64, "RTM user id is 64 bytes; Agora allows fewer than 64"),
    ("x" * 255, "is 255 bytes"),
    ("\u00e9" * 32, "is 64 bytes"),
    (" bob", "starts with a space"),
    (" ", "starts with a space"),
    ("0", "'0' is not an RTM user: in RTC uid 0 means any uid"),
    ("null", "must not be the text 'null'"),
])
def test_rtm_user_refused(value, message):
    refused(tokens.check_rtm_user, value, message)


# -- Chat user ids: 1…64 characters of a-z, 0-9, "_", "-", "." ----------------------------------

@pytest.mark.parametrize("value", ["a", "bob", "0", "user_1", "first.last", "a-b", "x" * 64, "_-.",
                                   "9f8b2c1e-6a3d-4e2f-9b1a-0c5d7e8f9a0b"])  # a Chat user uuid fits too
def test_chat_user_accepted(value):
    ok(tokens.check_chat_user, value)


@pytest.mark.parametrize("value, message", [
    *NOT_TEXT[:-1],
    ("a\ud800", r"got '\\ud800'"),
    ("x" * 65, "Chat user id is 65 characters; Agora Chat allows at most 64"),
    ("Bob", "'Bob' has uppercase letters; Agora Chat user ids are lowercase: use 'bob'"),
    ("BOB_1", "use 'bob_1'"),
    ("Bob!", "may hold only lowercase a-z, 0-9, '_', '-' and '.'; got '!'"),
    ("bob smith", "got ' '"),
    ("bob@example.com", "got '@'"),
    ("a\x00", r"got '\\x00'"),
    ("a\n", r"got '\\n'"),
    ("a\u2028", r"got '\\u2028'"),
    ("\u00e9", "got 'é'"),
    ("\u212a", "got '\u212a'"),  # KELVIN SIGN: lowercases to "k", but is not ASCII
])
def test_chat_user_refused(value, message):
    refused(tokens.check_chat_user, value, message)


def test_limits_are_exported():
    assert (tokens.MAX_CHANNEL_BYTES, tokens.MAX_ACCOUNT_BYTES, tokens.MAX_RTM_USER_BYTES,
            tokens.MAX_CHAT_USER_CHARS) == (63, 255, 63, 64)
