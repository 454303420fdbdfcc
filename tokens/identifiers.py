"""Agora's rules for the names a token carries: channel names, RTC user accounts, RTM user ids
and Chat user ids. One home for each rule; every check returns the value or raises
``TokenError`` saying which rule it breaks.

- Channel name (RTC ``joinChannel``): fewer than 64 bytes, from a-z, A-Z, 0-9, space and
  ``!#$%&()+-:;<=.>?@[]^_{}|~,``. ``*`` alone is the wildcard channel of a token.
- RTC user account (``registerLocalUserAccount``, ``joinChannelWithUserAccount``): not empty,
  at most 255 bytes, the channel name's characters.
- RTM user id (RTM ``login``): not empty, fewer than 64 bytes, the same characters, not
  starting with a space, not the text ``null``. Nor ``0``: in RTC uid 0 means "any uid", and
  every RTM client logging in as "0" would push the one before it out.
- Chat user id (Chat ``username``): not empty, at most 64 characters from a-z, 0-9, ``_``,
  ``-`` and ``.``; no uppercase (the Chat SDK lowercases the id it logs in with).
"""
from __future__ import annotations

import re

from .exceptions import TokenError

WILDCARD_CHANNEL = "*"
MAX_CHANNEL_BYTES = 63  # "less than 64 bytes"
MAX_ACCOUNT_BYTES = 255
MAX_RTM_USER_BYTES = 63  # "less than 64 bytes"
MAX_CHAT_USER_CHARS = 64

PUNCTUATION = "!#$%&()+-:;<=.>?@[]^_{}|~,"
ALPHABET = f"a-z, A-Z, 0-9, space and {PUNCTUATION}"  # as messages name it
CHAT_ALPHABET = "lowercase a-z, 0-9, '_', '-' and '.'"

_CLASS = f"A-Za-z0-9 {re.escape(PUNCTUATION)}"
CHANNEL_CHARS = re.compile(f"[{_CLASS}]+")  # the characters of channels, accounts and RTM users
_NOT_CHANNEL_CHAR = re.compile(f"[^{_CLASS}]")
_NOT_CHAT_CHAR = re.compile(r"[^a-z0-9_.\-]")


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TokenError(f"{what} must be text")
    if not value:
        raise TokenError(f"{what} is empty")
    return value


def _size(value: str, what: str, limit: int, allowed: str) -> None:
    """Refuse ``value`` if its UTF-8 form is over ``limit`` bytes (``allowed`` says the rule)."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form, so no place in a token
        raise TokenError(f"{what} is not valid Unicode text (it has a lone surrogate)") from None
    if size > limit:
        raise TokenError(f"{what} is {size} bytes; Agora allows {allowed}")


def check_text(value: str, what: str, max_bytes: int = MAX_ACCOUNT_BYTES) -> str:
    """A name with no Agora rule held here (an RTM 2 resource name, an APaaS uuid): text, not
    empty, at most ``max_bytes`` of UTF-8."""
    _size(_text(value, what), what, max_bytes, f"at most {max_bytes}")
    return value


def _alphabet(value: str, what: str) -> None:
    bad = _NOT_CHANNEL_CHAR.search(value)
    if bad is not None:
        raise TokenError(f"{what} may hold only {ALPHABET} ; got {bad.group()!r}")


def check_channel(channel_name: str, what: str = "channel name") -> str:
    """A channel name Agora accepts, or the wildcard ``*``."""
    if channel_name == WILDCARD_CHANNEL:
        return channel_name
    _size(_text(channel_name, what), what, MAX_CHANNEL_BYTES, f"fewer than {MAX_CHANNEL_BYTES + 1}")
    _alphabet(channel_name, what)
    return channel_name


def check_account(value: str, what: str = "user account") -> str:
    """An RTC user account (a string uid) Agora accepts."""
    _size(_text(value, what), what, MAX_ACCOUNT_BYTES, f"at most {MAX_ACCOUNT_BYTES}")
    _alphabet(value, what)
    return value


def check_rtm_user(value: str, what: str = "RTM user id") -> str:
    """An RTM user id Agora accepts, other than "0"."""
    _text(value, what)
    if value == "0":
        raise TokenError(f"{what} '0' is not an RTM user: in RTC uid 0 means any uid; "
                         "give each RTM user an id of its own")
    if value == "null":
        raise TokenError(f"{what} must not be the text 'null'; Agora refuses it")
    if value[0] == " ":
        raise TokenError(f"{what} starts with a space; Agora does not allow that")
    _size(value, what, MAX_RTM_USER_BYTES, f"fewer than {MAX_RTM_USER_BYTES + 1}")
    _alphabet(value, what)
    return value


def check_chat_user(value: str, what: str = "Chat user id") -> str:
    """A Chat user id (username) Agora accepts."""
    if len(_text(value, what)) > MAX_CHAT_USER_CHARS:
        raise TokenError(f"{what} is {len(value)} characters; Agora Chat allows at most "
                         f"{MAX_CHAT_USER_CHARS}")
    lowered = value.lower() if value.isascii() else value  # ASCII: same length, same places
    bad = _NOT_CHAT_CHAR.search(lowered)
    if bad is not None:
        raise TokenError(f"{what} may hold only {CHAT_ALPHABET}; got {value[bad.start()]!r}")
    if lowered != value:
        raise TokenError(f"{what} {value!r} has uppercase letters; Agora Chat user ids are "
                         f"lowercase: use {lowered!r}")
    return value
