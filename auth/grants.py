"""The grants of a policy: whom each is for (``When``) and what it allows, per service.

Plain values, compiled by the policy file's reader (``policy_file``) and consulted by
``Policy.decide`` (``policy``). Each service grant answers ``refuses(want, caller)``: None when
it allows the request, else the check that failed ("channel", "role", "uid", ...).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tokens import WILDCARD_CHANNEL, Role

from .models import TokenRequest
from .patterns import ChannelSet, IdSet


class Caller(Protocol):
    """What a grant reads about the caller (``policy`` reads each claim at most once)."""

    claims: Mapping[str, Any]
    subject: str | None

    @property
    def groups(self) -> frozenset[str]: ...

    @property
    def self_text(self) -> str | None: ...


@dataclass(frozen=True)
class When:
    """Whom a grant is for: everyone authenticated, or members of groups, or named subjects."""

    everyone: bool = False
    groups: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()

    def matches(self, caller: Caller) -> bool:
        return (self.everyone or caller.subject in self.subjects
                or (bool(self.groups) and not self.groups.isdisjoint(caller.groups)))


@dataclass(frozen=True)
class RtcGrant:
    channels: ChannelSet
    roles: frozenset[Role]
    uids: IdSet
    max_expire: int
    wildcard: bool = False

    def refuses(self, want: TokenRequest, caller: Caller) -> str | None:
        if want.channel == WILDCARD_CHANNEL:
            if not self.wildcard:
                return "wildcard"
        elif not isinstance(want.channel, str) or not self.channels.matches(
                want.channel, caller.subject, caller.claims):
            return "channel"
        if want.role not in self.roles:
            return "role"
        if want.uid is None or not self.uids.allows_uid(want.uid, caller.self_text):
            return "uid"
        return None


@dataclass(frozen=True)
class RtmGrant:
    users: IdSet
    max_expire: int

    def refuses(self, want: TokenRequest, caller: Caller) -> str | None:
        ok = want.user is not None and self.users.allows_user(want.user, caller.self_text)
        return None if ok else "user"


@dataclass(frozen=True)
class ChatGrant:
    users: IdSet | None
    app: bool
    max_expire: int

    def refuses(self, want: TokenRequest, caller: Caller) -> str | None:
        if want.app:
            return None if self.app else "app"
        ok = (self.users is not None and want.user is not None
              and self.users.allows_user(want.user, caller.self_text))
        return None if ok else "user"


@dataclass(frozen=True)
class Grant:
    when: When
    rtc: RtcGrant | None = None
    rtm: RtmGrant | None = None
    chat: ChatGrant | None = None
