"""The one path every contract takes: authenticate → authorize → build → audit.

Contracts only parse their own request shape into ``TokenRequest`` values and shape the
answer; everything that decides or signs happens here, once.
"""
from __future__ import annotations

from dataclasses import dataclass

import tokens
from auth.models import PolicyDecision, TokenRequest
from errors import BadRequest, Forbidden

from .observability import audit
from .routing import Request


@dataclass(frozen=True)
class Issued:
    token: str
    expire: int  # the lifetime actually granted (the policy may have capped it)


def issue(request: Request, *wanted: TokenRequest) -> list[Issued]:
    """Authorize every request for the caller (all or nothing), then build and audit each token.

    api/front.py has verified the caller's JWT (``request.caller``) before the view runs.
    """
    caller, policy = request.caller, request.service.auth.policy
    decisions = []
    for want in wanted:
        decision = policy.decide(caller, want)
        audit(request, want, decision)
        if not decision.granted:
            raise Forbidden(decision.reason)
        decisions.append(decision)
    return [Issued(_build(request.service, want, decision), decision.expire)
            for want, decision in zip(wanted, decisions)]


def _build(service, want: TokenRequest, decision: PolicyDecision) -> str:
    app_id, cert, life = service.app_id, service.app_certificate, decision.expire
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
