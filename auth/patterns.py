"""The policy's matchers, compiled once when the policy loads: claim paths, channel patterns, uids.

A channel pattern is a case-sensitive glob over the whole name: ``*`` is any run of characters
(possibly none), ``?`` exactly one, and every other character stands for itself. ``{sub}`` and
``{claims.NAME}`` are filled from the caller's JWT when a request is decided, and the value is
matched literally (a subject ``*`` matches only a channel named ``*``); a missing claim makes the
pattern match nothing. ``{{`` and ``}}`` are literal braces. Nothing here knows about files:
a bad pattern or uid raises ``PatternError`` and the loader adds the file and line.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tokens import MAX_UID, TokenError, check_account
from tokens.identifiers import CHANNEL_CHARS, MAX_CHANNEL_BYTES

from .models import is_uid_0

ClaimPath = tuple[str, ...]  # a dotted claim path, split once
MISSING = object()  # claim_value's answer for a claim the token does not have
_ANY1 = object()  # "?" in a parsed pattern
_STAR = object()  # "*"
_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_RANGE = re.compile(r"([0-9]+) *- *([0-9]+)")


class PatternError(ValueError):
    """A claim path, channel pattern or uid the policy cannot use; the message says why."""


def claim_path(text: str) -> ClaimPath:
    """``realm_access.roles`` → ``("realm_access", "roles")``; a segment may hold ``:`` or ``/``."""
    parts = tuple(text.split("."))
    if not text or "" in parts:
        raise PatternError(f"claim path {text!r} has an empty part")
    return parts


def claim_value(claims: Any, path: ClaimPath) -> Any:
    """The value at ``path``, or ``MISSING``. A claim whose own name holds dots (Auth0's
    ``https://example.com/roles``) is found too: the longest name present wins at each level."""
    if not isinstance(claims, dict) and not isinstance(claims, Mapping):  # dict: the fast check
        return MISSING
    if len(path) == 1:
        return claims.get(path[0], MISSING)
    for cut in range(len(path), 0, -1):
        key = path[0] if cut == 1 else ".".join(path[:cut])
        if key in claims:
            if cut == len(path):
                return claims[key]
            found = claim_value(claims[key], path[cut:])
            if found is not MISSING:
                return found
    return MISSING


def claim_text(value: Any) -> str | None:
    """A claim as text for comparing: strings and integers only (1234 and "1234" are the same)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def uid_claim_text(value: Any) -> str | None:
    """The ``identity.uid`` claim as text, like ``claim_text``; but an integer outside Agora's uid
    range (0…MAX_UID) is no uid, and matches nothing rather than pose as an account ("-1")."""
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_UID:
        return None
    return claim_text(value)


class _Fill:
    """A placeholder: ``{sub}`` (path None) or ``{claims.NAME}``."""

    __slots__ = ("path",)

    def __init__(self, path: ClaimPath | None):
        self.path = path

    def text(self, subject: str | None, claims: Mapping[str, Any]) -> str | None:
        return subject if self.path is None else claim_text(claim_value(claims, self.path))


def _parse(pattern: str) -> list:
    """The pattern as a list of literal runs, ``_ANY1``, ``_STAR`` and ``_Fill`` placeholders."""
    items: list = []

    def literal(text: str) -> None:
        for run in re.split(r"([*?])", text):
            if run in ("*", "?"):
                items.append(_STAR if run == "*" else _ANY1)
            elif run:
                bad = next((c for c in run if not CHANNEL_CHARS.fullmatch(c)), None)
                if bad is not None:
                    raise PatternError(f"channel pattern {pattern!r} contains {bad!r}, which Agora "
                                       "does not allow in channel names")
                items.append(run)

    pos = 0
    for m in _BRACES.finditer(pattern):
        literal(pattern[pos:m.start()])
        pos = m.end()
        token, name = m.group(0), m.group(1)
        if token in ("{{", "}}"):
            items.append(token[0])
        elif name is None:
            raise PatternError(f"channel pattern {pattern!r} has a lone {token!r}; "
                               f"write {token * 2!r} for a literal brace")
        elif name == "sub":
            items.append(_Fill(None))
        elif name.startswith("claims."):
            items.append(_Fill(claim_path(name[len("claims."):])))
        else:
            raise PatternError(f"channel pattern {pattern!r} has an unknown placeholder {{{name}}} "
                               "(known: {sub} and {claims.NAME})")
    literal(pattern[pos:])
    return items


def _segments(items: list) -> list[list]:
    """Split at each ``*``: fixed-width runs of literals, ``_ANY1`` and placeholders."""
    segments: list[list] = [[]]
    for item in items:
        if item is _STAR:
            segments.append([])
        else:
            segments[-1].append(item)
    return segments


def _segment_regex(segment: list) -> str:
    return "".join("." if part is _ANY1 else re.escape(part) for part in segment)


def _glob_regex(items: list) -> str:
    """A regex for a glob that cannot backtrack badly: between two stars the leftmost place for
    a fixed-width run is always the best one, so each is found lazily and then committed."""
    segments = _segments(items)
    if len(segments) == 1:
        return _segment_regex(segments[0])
    middle = "".join(f"(?>.*?{_segment_regex(s)})" for s in segments[1:-1] if s)
    return f"{_segment_regex(segments[0])}{middle}.*{_segment_regex(segments[-1])}"


def _match_at(segment: list, name: str, pos: int) -> int:
    """Where ``segment`` (literal text and ``_ANY1``) ends if it matches at ``pos``, else -1."""
    for part in segment:
        if part is _ANY1:
            if pos >= len(name):
                return -1
            pos += 1
        elif name.startswith(part, pos):
            pos += len(part)
        else:
            return -1
    return pos


def _glob_match(segments: list[list], name: str) -> bool:
    """``_glob_regex``'s matching in Python, for templates whose values must stay literal."""
    if len(segments) == 1:
        return _match_at(segments[0], name, 0) == len(name)
    pos = _match_at(segments[0], name, 0)
    last = segments[-1]
    start_last = len(name) - sum(1 if p is _ANY1 else len(p) for p in last)
    if pos < 0 or start_last < pos or _match_at(last, name, start_last) < 0:
        return False
    for segment in segments[1:-1]:
        while True:
            end = _match_at(segment, name, pos)
            if end >= 0 and end <= start_last:
                pos = end
                break
            pos += 1
            if pos > start_last:
                return False
    return True


class _Template:
    """A pattern with placeholders, split at load time and filled per request."""

    __slots__ = ("segments", "exact")

    def __init__(self, items: list):
        self.segments = _segments(items)
        self.exact = len(self.segments) == 1 and _ANY1 not in items

    def matches(self, channel: str, subject: str | None, claims: Mapping[str, Any]) -> bool:
        filled = []
        for segment in self.segments:
            parts = []
            for part in segment:
                if type(part) is _Fill:
                    text = part.text(subject, claims)
                    if text is None:
                        return False
                    parts.append(text)
                else:
                    parts.append(part)
            filled.append(parts)
        if self.exact:
            return "".join(filled[0]) == channel
        return _glob_match(filled, channel)


class ChannelSet:
    """A grant's ``channels``: exact names in a set, globs in one regex, templates one by one."""

    __slots__ = ("names", "regex", "templates")

    def __init__(self, patterns: Iterable[str]):
        names, globs, templates = set(), [], []
        for pattern in patterns:
            items = _parse(pattern) if pattern else None
            if not items:
                raise PatternError("a channel pattern is empty")
            fixed = sum(len(i.encode()) if isinstance(i, str) else i is _ANY1 for i in items)
            if fixed > MAX_CHANNEL_BYTES:
                raise PatternError(f"channel pattern {pattern!r} can never match: Agora channel "
                                   f"names are at most {MAX_CHANNEL_BYTES} bytes")
            if any(type(i) is _Fill for i in items):
                templates.append(_Template(items))
            elif all(isinstance(i, str) for i in items):
                names.add("".join(items))
            else:
                globs.append(_glob_regex(items))
        self.names = frozenset(names)
        self.regex = re.compile("|".join(f"(?:{g})" for g in globs), re.DOTALL) if globs else None
        self.templates = tuple(templates)

    def matches(self, channel: str, subject: str | None, claims: Mapping[str, Any]) -> bool:
        if channel in self.names or (self.regex is not None and self.regex.fullmatch(channel)):
            return True
        return any(t.matches(channel, subject, claims) for t in self.templates)


class IdSet:
    """A grant's ``uids`` (RTC) or ``users`` (RTM, Chat): self, any, literals and uid ranges.

    Ids compare as text, the way the token carries them: uid 1234 and account "1234" are the
    same. Uid 0 (a token any uid may use) and the account "0" are allowed only by ``any`` or a
    literal 0 (``models.is_uid_0``).
    """

    __slots__ = ("any", "self", "zero", "texts", "ranges")

    def __init__(self, entries: Iterable[Any], *, uids: bool):
        self.any = self.self = self.zero = False
        texts, ranges = set(), []
        for entry in entries:
            value = _id_entry(entry, uids)
            if value in ("any", "self"):
                setattr(self, value, True)
            elif value == 0:
                self.zero = True
            elif isinstance(value, tuple):
                ranges.append(value)
            else:
                texts.add(str(value))
        self.texts, self.ranges = frozenset(texts), tuple(ranges)

    def allows_uid(self, uid: int | str, self_text: str | None) -> bool:
        if is_uid_0(uid):
            return self.any or self.zero
        if isinstance(uid, int):
            uid = str(uid)
        if self.any or uid in self.texts or (self.self and self_text is not None and uid == self_text):
            return True
        if self.ranges and uid.isascii() and uid.isdigit() and uid[0] != "0":
            number = int(uid)
            return any(lo <= number <= hi for lo, hi in self.ranges)
        return False

    def allows_user(self, user: str, self_text: str | None) -> bool:
        return (self.any or user in self.texts
                or (self.self and self_text is not None and user == self_text))


def _id_entry(entry: Any, uids: bool) -> Any:
    """One list entry: "any", "self", an int uid, an account text, or a (lo, hi) range."""
    what = "uid" if uids else "user"
    if isinstance(entry, str) and entry.lower() in ("any", "self"):
        return entry.lower()
    if isinstance(entry, bool) or not isinstance(entry, (int, str)):
        raise PatternError(f"a {what} must be self, any, a number or text, not {entry!r}")
    if isinstance(entry, str) and uids and (m := _RANGE.fullmatch(entry)):
        lo, hi = int(m.group(1)), int(m.group(2))
        if not 1 <= lo <= hi <= MAX_UID:
            raise PatternError(f"uid range {entry!r} must be LOW-HIGH with 1 <= LOW <= HIGH <= "
                               f"{MAX_UID} (uid 0 is granted only by any or a literal 0)")
        return (lo, hi)
    if not uids:
        entry = str(entry)  # RTM and Chat user ids are text; an unquoted 42 means "42"
    elif isinstance(entry, str) and entry.isascii() and entry.isdigit() and (entry == "0" or entry[0] != "0"):
        entry = int(entry)  # "42" is uid 42: the token carries both as the same text ("0123" is an account)
    if isinstance(entry, int):
        if not 0 <= entry <= MAX_UID:
            raise PatternError(f"uid {entry} is out of range 0…{MAX_UID}")
        return entry
    try:
        return check_account(entry, what)
    except TokenError as e:
        raise PatternError(str(e)) from None
