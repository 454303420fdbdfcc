"""The one path every contract takes: authorize → build → audit.

Contracts parse their own request shape into ``TokenRequest`` values and shape the answer;
everything that decides or signs happens here, once. The JWT middleware (api/guard.py) has
verified the caller before any contract runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

import tokens
from auth.models import PolicyDecision, TokenRequest
from errors import BadRequest, Forbidden

from . import metrics
from .guard import AUTH_EXTENSION, caller
from .observability import audit

SIGNER_EXTENSION = "token_signer"


@dataclass(frozen=True)
class Signer:
    """The Agora project's credentials, kept out of ``app.config`` and out of every repr."""

    app_id: str
    app_certificate: str = field(repr=False)

    def build(self, want: TokenRequest, decision: PolicyDecision) -> str:
        app_id, cert, life = self.app_id, self.app_certificate, decision.expire
        try:
            if want.service == "rtc":
                return tokens.build_rtc_token(app_id, cert, want.channel, want.uid, want.role, life, life)
            if want.service == "rtm":
                return tokens.build_rtm_token(app_id, cert, want.user, life)
            if want.app:
                return tokens.build_chat_app_token(app_id, cert, life)
            return tokens.build_chat_user_token(app_id, cert, want.user, life)
        except tokens.TokenError as e:  # the contracts validate first; this is the backstop
            raise BadRequest(str(e)) from None


@dataclass(frozen=True)
class Issued:
    token: str = field(repr=False)
    expire: int  # the lifetime actually granted (the policy may have capped it)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Token-Expire": str(self.expire)}


def issue(*wanted: TokenRequest) -> list[Issued]:
    """Authorize every request for the caller (all or nothing), then build and audit each token."""
    who = caller()
    extensions = current_app.extensions
    policy, signer = extensions[AUTH_EXTENSION].policy, extensions[SIGNER_EXTENSION]
    decisions = []
    for want in wanted:
        decision = policy.decide(who, want)
        audit(who, want, decision)
        metrics.decided(want, decision)
        if not decision.granted:
            raise Forbidden(decision.reason)
        decisions.append(decision)
    built = [Issued(signer.build(want, decision), decision.expire) for want, decision in zip(wanted, decisions)]
    for want in wanted:
        metrics.issued(want)
    return built
