"""Parsing of the values the contracts share: roles, uids, accounts, lifetimes, JSON bodies.

Every function either returns a clean value or raises ``BadRequest`` naming the parameter.
"""
from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

import tokens
from errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tokens import Role, TokenError

ROLES = {
    "publisher": Role.PUBLISHER, "1": Role.PUBLISHER, "host": Role.PUBLISHER,
    "broadcaster": Role.PUBLISHER,
    "subscriber": Role.SUBSCRIBER, "2": Role.SUBSCRIBER, "audience": Role.SUBSCRIBER,
}
ROLE_SPELLINGS = "publisher, host, broadcaster, 1, subscriber, audience or 2"


def role(value: Any, name: str = "role") -> Role:
    """Any role spelling the public servers accept; anything else is a 400."""
    key = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    try:
        return ROLES[key]
    except KeyError:
        raise BadRequest(f"{name} must be one of {ROLE_SPELLINGS}") from None


def numeric_uid(value: Any, name: str = "uid") -> int:
    """An integer uid in 0…2^32−1, from a JSON number or a string of digits."""
    if isinstance(value, bool) or value is None:
        raise BadRequest(f"{name} must be an integer in 0…{tokens.MAX_UID}")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit():
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


def account(value: Any, name: str = "account") -> str:
    if value is None or value == "":
        raise BadRequest(f"{name} is required")
    try:
        return tokens.check_account(value, name)
    except TokenError as e:
        raise BadRequest(str(e)) from None


def channel(value: Any, name: str = "channel") -> str:
    if value is None or value == "":
        raise BadRequest(f"{name} is required")
    try:
        return tokens.check_channel(value)
    except TokenError as e:
        raise BadRequest(f"{name}: {e}") from None


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
    """The request's JSON object; 415 if not JSON, 400 if malformed or not an object."""
    if not request.is_json:
        raise UnsupportedMediaType("the request body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH caps it (413)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body has no length to check up front: werkzeug stops reading at the cap
        # without a word, so look one byte further rather than parse a prefix.
        if request.environ["wsgi.input"].read(1):
            raise PayloadTooLarge("the request body is too large")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body
