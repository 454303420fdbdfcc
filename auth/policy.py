"""What a verified caller may have: the operator's policy, compiled once at start-up.

Deny by default. A request is granted when a grant whose ``when`` matches the caller allows its
service, channel, role and uid (or user); the lifetime is capped at the largest ``max_expire``
among the grants that allow it. ``config/policy.example.yaml`` documents every key; the file
is read by ``policy_file`` (any mistake in it is a ``PolicyError`` naming the file and line).
``decide`` itself never raises.

    >>> policy = load_policy("config/policy.example.yaml")  # auth.policy_file
    >>> policy.decide(identity, TokenRequest("rtc", 600, channel="live-1", uid=7, role=Role.PUBLISHER))
    PolicyDecision(granted=True, expire=3600, reason='granted', refused=None)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from tokens import MAX_EXPIRE, WILDCARD_CHANNEL

from .grants import Grant
from .models import Identity, PolicyDecision, TokenRequest, is_uid_0
from .patterns import MISSING, ClaimPath, claim_text, claim_value, uid_claim_text

__all__ = ["Policy"]

# With several matching grants, the refusal that got furthest is the one reported.
_DEPTH = {"service": 0, "channel": 1, "wildcard": 1, "role": 2, "uid": 3, "user": 3, "app": 3}
_GRANTED = "granted"
_WILDCARD_UID_0 = ("the wildcard channel '*' cannot be used with uid 0 or the account '0': "
                   "Agora requires a specific uid")


class _Caller:
    """The claims a decision needs, each read at most once per request (a ``grants.Caller``)."""

    __slots__ = ("claims", "subject", "_policy", "_groups", "_self")

    def __init__(self, policy: Policy, identity: Identity):
        self.claims = identity.claims
        self.subject = policy._subject(identity)
        self._policy = policy
        self._groups: frozenset[str] | None = None
        self._self: str | Literal[False] | None = False  # False until read: None is an answer

    @property
    def groups(self) -> frozenset[str]:
        if self._groups is None:
            self._groups = self._policy.groups_of(self.claims)
        return self._groups

    @property
    def self_text(self) -> str | None:
        if self._self is False:
            self._self = self._policy.self_of(self.claims, self.subject)
        return self._self


class Policy:
    """The compiled policy; ``decide`` answers one ``TokenRequest`` for one caller."""

    def __init__(self, grants: Sequence[Grant], *, subject: ClaimPath = ("sub",),
                 groups: ClaimPath = ("groups",), uid: ClaimPath | None = None,
                 source: str = "<string>"):
        self.grants, self.source = tuple(grants), source
        self._subject_claim, self._groups_claim, self._uid_claim = subject, groups, uid
        self._by_service = {service: tuple((g.when, getattr(g, service)) for g in self.grants
                                           if getattr(g, service) is not None)
                            for service in ("rtc", "rtm", "chat")}

    def subject_of(self, claims: Mapping[str, Any]) -> str | None:
        """The caller's subject: the ``identity.subject`` claim as text (None if absent)."""
        return claim_text(claim_value(claims, self._subject_claim))

    def groups_of(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """The caller's groups: a list of strings or one space-separated string; none if absent.

        A string is split on ASCII spaces only, as OAuth scope strings are (RFC 6749 §3.3):
        ``str.split()`` would also cut at U+00A0 and other Unicode spaces, granting "ops" to a
        group named "fans<U+00A0>ops".
        """
        value = claim_value(claims, self._groups_claim)
        if isinstance(value, str):
            return frozenset(part for part in value.split(" ") if part)
        if isinstance(value, (list, tuple)):
            return frozenset(v for v in value if isinstance(v, str))
        return frozenset()

    def self_of(self, claims: Mapping[str, Any], subject: str | None) -> str | None:
        """What ``self`` stands for: the ``identity.uid`` claim if the token has it, else the subject.

        Only a missing uid claim falls back to the subject. One that is present but is not a
        non-empty string or an integer within 0…4294967295 (null, "", an object, a list, a
        boolean, a float, -1, 10**400) matches nothing: ids compare as text, so a numeric subject
        ("42") standing in for it would pose as uid 42, which may be another user's uid.
        """
        if self._uid_claim is not None:
            value = claim_value(claims, self._uid_claim)
            if value is not MISSING:
                return uid_claim_text(value)
        return subject

    def _subject(self, identity: Identity) -> str | None:
        if self._subject_claim == ("sub",):
            return identity.subject
        return self.subject_of(identity.claims)

    def decide(self, identity: Identity, want: TokenRequest) -> PolicyDecision:
        """Granted with the capped lifetime, or refused with the deepest check that failed."""
        if want.service == "rtc" and want.channel == WILDCARD_CHANNEL and is_uid_0(want.uid):
            return PolicyDecision(False, reason=_WILDCARD_UID_0, refused="uid")  # whatever the policy
        caller = _Caller(self, identity)
        cap, refused = 0, "service"
        for when, grant in self._by_service.get(want.service, ()):
            if not when.matches(caller):
                continue
            why = grant.refuses(want, caller)
            if why is None:
                if grant.max_expire >= want.expire:  # no other grant can give more
                    return PolicyDecision(True, expire=min(want.expire, MAX_EXPIRE), reason=_GRANTED)
                cap = max(cap, grant.max_expire)
            elif _DEPTH[why] > _DEPTH[refused]:
                refused = why
        if cap:
            return PolicyDecision(True, expire=min(want.expire, cap), reason=_GRANTED)
        return PolicyDecision(False, reason=_REASONS[refused](want), refused=refused)


def _what(want: TokenRequest) -> str:
    return "chat app" if want.app else want.service


def _uid_reason(want: TokenRequest) -> str:
    if is_uid_0(want.uid):
        uid = "the account '0' (judged as uid 0)" if isinstance(want.uid, str) else "uid 0 (a token any uid may use)"
    else:
        uid = f"uid {want.uid!r}"
    return f"{uid} in channel {want.channel!r} is not granted to this caller"


_REASONS: dict[str, Callable[[TokenRequest], str]] = {
    "service": lambda w: f"{_what(w)} tokens are not granted to this caller",
    "channel": lambda w: f"channel {w.channel!r} is not granted to this caller",
    "wildcard": lambda w:
        "the wildcard channel '*' (valid in every channel) is not granted to this caller",
    "role": lambda w: (f"role {w.role.name.lower() if w.role is not None else None} in channel "
                       f"{w.channel!r} is not granted to this caller"),
    "uid": _uid_reason,
    "user": lambda w: f"{w.service} user {w.user!r} is not granted to this caller",
    "app": lambda w: "chat app tokens are not granted to this caller",
}
