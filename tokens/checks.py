"""The inputs every builder shares, each checked once: credentials, uid, lifetimes, issue time
and salt; and the token header a builder starts from.

``MAX_EXPIRE`` (24 hours) is the one home of the longest lifetime: the HTTP contracts, the
policy file and the settings all take it from here.
"""
from __future__ import annotations

import re
import secrets
import struct
import threading
import time
from functools import lru_cache

from .access_token import AccessToken
from .exceptions import TokenError
from .identifiers import check_account
from .services import uid_text

MAX_EXPIRE = 86_400
MAX_UID = 2**32 - 1
MAX_SALT = 99_999_999
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")

_salt_state = threading.local()


def random_salt() -> int:
    """A uniform salt in 1…99,999,999 from ``secrets``.

    Random bytes are drawn 4 KiB at a time (one system call per ~750 salts instead of one or
    two per salt); 27-bit draws at or above the range are rejected, so there is no bias.
    """
    draws = getattr(_salt_state, "draws", None)
    while True:
        if draws is not None:
            for (draw,) in draws:
                value = draw & 0x7FFFFFF
                if value < MAX_SALT:
                    return value + 1
        draws = _salt_state.draws = struct.iter_unpack("<I", secrets.token_bytes(4096))


@lru_cache(maxsize=64)
def _check_credentials(app_id: str, app_certificate: str) -> None:
    for name, value in (("app_id", app_id), ("app_certificate", app_certificate)):
        if not isinstance(value, str) or not _HEX32.fullmatch(value):
            raise TokenError(f"{name} must be 32 hexadecimal characters")


def check_credentials(app_id: str, app_certificate: str) -> None:
    try:
        _check_credentials(app_id, app_certificate)
    except TypeError:  # unhashable input never reaches the cache
        raise TokenError("app_id and app_certificate must be text") from None


def check_uid(uid: int | str) -> str:
    """A numeric uid (0…2^32−1) or a user account; returns its wire text."""
    if isinstance(uid, bool):
        raise TokenError("uid must be an integer or a user account string, not a boolean")
    if isinstance(uid, int):
        if not 0 <= uid <= MAX_UID:
            raise TokenError(f"uid {uid} is out of range 0…{MAX_UID}")
        return uid_text(uid)
    if isinstance(uid, str):
        return check_account(uid)
    raise TokenError(f"uid must be an integer or a user account string, not {type(uid).__name__}")


def check_lifetime(value: int, what: str, *, required: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenError(f"{what} must be a whole number of seconds, got {value!r}")
    if value < 0:
        raise TokenError(f"{what} is negative ({value} s)")
    if value == 0 and required:
        raise TokenError(f"{what} must be at least 1 second")
    if value > MAX_EXPIRE:
        raise TokenError(f"{what} is {value} s; a token lives at most {MAX_EXPIRE} s (24 hours)")
    return value


def token_header(app_id: str, app_certificate: str, token_expire: int,
                 issue_ts: int | None, salt: int | None) -> AccessToken:
    """An empty token with its header checked; ``issue_ts`` and ``salt`` default to now and a
    fresh random salt."""
    check_credentials(app_id, app_certificate)
    check_lifetime(token_expire, "token lifetime")
    if issue_ts is None:
        issue_ts = int(time.time())
    elif isinstance(issue_ts, bool) or not isinstance(issue_ts, int) or not 0 <= issue_ts <= 0xFFFFFFFF:
        raise TokenError(f"issue_ts must be Unix seconds in 0…{0xFFFFFFFF}, got {issue_ts!r}")
    if salt is None:
        salt = random_salt()
    elif isinstance(salt, bool) or not isinstance(salt, int) or not 1 <= salt <= MAX_SALT:
        raise TokenError(f"salt must be in 1…{MAX_SALT}, got {salt!r}")
    return AccessToken(app_id, issue_ts, token_expire, salt)
