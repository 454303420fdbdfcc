"""The plain values that flow through authorization: who asks, what they ask, what they get."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from tokens import Role

Service = Literal["rtc", "rtm", "chat"]
Uid = int | str  # int: numeric Agora uid (0 = any uid); str: user account
ACCOUNT_0 = "0"


def is_uid_0(uid: Uid | None) -> bool:
    """uid 0 (a token any uid may use), or the account "0", which the policy judges alike.

    The token writes uid 0 as "" and the account as "0" (AgoraIO/Tools' builders do the same),
    so they are different tokens; but Agora documents no meaning for the account "0", and "0"
    is the text of uid 0. Granting it only where uid 0 is granted is safe whichever it means.
    """
    return uid == ACCOUNT_0 or (isinstance(uid, int) and not isinstance(uid, bool) and uid == 0)


@dataclass(frozen=True)
class Identity:
    """A caller whose JWT was verified: the claims, and the two that name them."""

    subject: str
    issuer: str
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property  # per request at least, and per JWT while the verifier caches its Identity
    def key(self) -> str:
        """The caller's rate-limit bucket: the same for every worker, machine and storage, and
        another for every other (issuer, subject). A hash of the JSON array, not the two joined:
        any separator can occur in either, and a subject may hold a lone surrogate, which JSON
        writes as its escape, in ASCII."""
        return hashlib.sha256(json.dumps([self.issuer, self.subject]).encode()).hexdigest()


@dataclass(frozen=True)
class TokenRequest:
    """One token a contract asks for, in the service's own terms.

    - ``rtc``: ``channel``, ``uid`` (int or account), ``role``.
    - ``rtm``: ``user`` (an RTM user id).
    - ``chat``: ``user`` (a Chat user id), or ``app=True`` for an app token (``user`` None).

    ``expire`` is the asked lifetime in seconds (already defaulted, 1…86,400).
    """

    service: Service
    expire: int
    channel: str | None = None
    uid: Uid | None = None
    role: Role | None = None
    user: str | None = None
    app: bool = False


@dataclass(frozen=True)
class PolicyDecision:
    """The policy's answer: granted or not, the lifetime granted, and why."""

    granted: bool
    expire: int = 0
    reason: str = ""
    refused: str | None = None  # "service" | "channel" | "wildcard" | "role" | "uid" | "user" | "app"
