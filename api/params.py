"""Parsing of the values the contracts share: roles, uids, accounts, lifetimes, JSON bodies.

Every function either returns a clean value or raises ``BadRequest`` naming the parameter.
"""
from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

from flask import current_app, request
from gunicorn.http.errors import NoMoreData, ParseException

import tokens
from exceptions import BadRequest, PayloadTooLarge, RequestTimeout
from tokens import ROLE_SPELLINGS, ROLES, Role, TokenError

BODY_TIMEOUT = 10.0  # seconds a request body may take (in a gevent worker; else per read)


def role(value: Any, name: str = "role") -> Role:
    """Any role spelling the public servers accept; anything else is a 400."""
    key = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    try:
        return ROLES[key]  # "" names no role
    except KeyError:
        raise BadRequest(f"{name} must be one of {ROLE_SPELLINGS}") from None


def numeric_uid(value: Any, name: str = "uid") -> int:
    """An integer uid in 0…2^32−1, from a JSON number or a string of digits."""
    if isinstance(value, bool) or value is None:
        raise BadRequest(f"{name} must be an integer in 0…{tokens.MAX_UID}")
    if isinstance(value, str):
        text = value.strip()
        # 20 digits: what agora-token-service's ParseUint takes (leading zeros included)
        if not text.isascii() or not text.isdigit() or len(text) > 20:
            raise BadRequest(f"{name} must be an integer in 0…{tokens.MAX_UID}")
        value = int(text)
    if not isinstance(value, int) or not 0 <= value <= tokens.MAX_UID:
        raise BadRequest(f"{name} must be an integer in 0…{tokens.MAX_UID}")
    return value


def uid_or_account(value: Any, name: str = "uid") -> int | str:
    """Like agora-token-service: all digits is a numeric uid, anything else an account."""
    if isinstance(value, int) and not isinstance(value, bool):
        return numeric_uid(value, name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a numeric uid or a user account string")
    text = value.strip()
    if text.isascii() and text.isdigit():
        return numeric_uid(text, name)
    return account(value, name)


def _identifier(check, value: Any, name: str) -> str:
    """``value`` held to one of Agora's identifier rules (tokens/identifiers.py), else a 400
    that names the parameter and the rule."""
    if value is None or value == "":
        raise BadRequest(f"{name} is required")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    try:
        return check(value, name)
    except TokenError as e:
        raise BadRequest(str(e)) from None


def account(value: Any, name: str = "account") -> str:
    """An RTC user account."""
    return _identifier(tokens.check_account, value, name)


def rtm_user(value: Any, name: str = "rtmuid") -> str:
    """An RTM user id."""
    return _identifier(tokens.check_rtm_user, value, name)


def chat_user(value: Any, name: str = "chatid") -> str:
    """An Agora Chat user id."""
    return _identifier(tokens.check_chat_user, value, name)


def channel(value: Any, name: str = "channel") -> str:
    """A channel name."""
    return _identifier(tokens.check_channel, value, name)


def query_expiry(name: str = "expiry") -> int:
    """agora-token-service's ``?expiry=``: missing means DEFAULT_EXPIRE, but present and empty is
    a 400 there (Go's ParseUint("")), and so it is here."""
    args = request.args
    # A lookup, not args.get(): werkzeug's get() builds and catches a BadRequestKeyError when
    # the key is missing, the usual case (a few percent of a token request's time under load).
    value = args[name] if name in args else None  # noqa: SIM401 (not get(): see above)
    if value == "":
        raise BadRequest(f"{name} must be a whole number of seconds")
    return expire(value, name)


def expire(value: Any, name: str = "expire") -> int:
    """Seconds from now; 0, empty or missing mean DEFAULT_EXPIRE; at most 86,400."""
    if value is None or value == "" or value == 0:
        return current_app.config["DEFAULT_EXPIRE"]
    if isinstance(value, str):
        text = value.strip()
        sign = text[:1] == "-"
        digits = text[1:] if sign else text
        if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
            raise BadRequest(f"{name} must be a whole number of seconds")
        value = -int(digits) if sign else int(digits)
        if value == 0:
            return current_app.config["DEFAULT_EXPIRE"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be a whole number of seconds")
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    if value > tokens.MAX_EXPIRE:
        raise BadRequest(f"{name} must be at most {tokens.MAX_EXPIRE} seconds (24 hours)")
    return value


def json_body() -> dict[str, Any]:
    """The request's JSON object; 413 if too large, 400 if malformed or not an object.

    Whatever the Content-Type says, as the Go servers whose contracts these are: they decode
    the body as JSON without looking (a client that sends none gets the same answers here).
    """
    try:
        body = json.loads(_read_body())
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _read_body() -> bytes:
    """At most MAX_BODY_BYTES of the body, by its Content-Length or to its end when chunked,
    within BODY_TIMEOUT: 408 for a body that stops arriving or arrives a byte at a time."""
    environ = request.environ
    sock = environ.get("gunicorn.socket")
    prior = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(BODY_TIMEOUT)  # no read waits longer than this
    try:
        with _deadline():  # and, under gevent, nor does the whole body
            return _read_body_now(environ, current_app.config["MAX_BODY_BYTES"])
    finally:
        if sock is not None:
            sock.settimeout(prior)  # the connection's next request is gunicorn's to time again


def _deadline():
    """A deadline on the whole read in a gevent worker (a greenlet can be interrupted); else none."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return contextlib.nullcontext()
    from gevent import Timeout

    return Timeout(BODY_TIMEOUT, RequestTimeout(f"the request body did not arrive within {BODY_TIMEOUT:g} s"))


def _read_body_now(environ: dict, limit: int) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    try:
        if length:
            if not (length.isascii() and length.isdigit()):
                raise BadRequest("Content-Length is not a number")
            if int(length) > limit:
                raise PayloadTooLarge("the request body is too large")
            return stream.read(int(length))
        if environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raw = stream.read(limit + 1)  # a chunked body has no length to check up front
            if len(raw) > limit:
                raise PayloadTooLarge("the request body is too large")
            return raw
        return b""
    except (ParseException, NoMoreData):  # gunicorn parses a chunked body as it is read
        raise BadRequest("the request body is malformed or cut short") from None
    except OSError:  # the timeout above, or the client went away
        raise RequestTimeout(f"the request body did not arrive within {BODY_TIMEOUT:g} s") from None
