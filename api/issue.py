"""The one path every contract takes: authenticate → authorize → build → audit.

Contracts only parse their own request shape into ``TokenRequest`` values and shape the
answer; everything that decides or signs happens here, once.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request

import tokens
from auth.models import Identity, PolicyDecision, TokenRequest
from errors import BadRequest, Forbidden

from .observability import audit


@dataclass(frozen=True)
class Issued:
    token: str
    expire: int  # the lifetime actually granted (the policy may have capped it)


def identity() -> Identity:
    """The caller's verified identity (401 if none), checked once per request."""
    found = g.get("identity")
    if found is None:
        auth = current_app.extensions["auth"]
        found = g.identity = auth.authenticate(request.headers.get("Authorization"))
    return found


def issue(*wanted: TokenRequest) -> list[Issued]:
    """Authorize every request (all or nothing), then build and audit each token."""
    caller = identity()
    policy = current_app.extensions["auth"].policy
    decisions = []
    for want in wanted:
        decision = policy.decide(caller, want)
        audit(caller, want, decision)
        if not decision.granted:
            raise Forbidden(decision.reason)
        decisions.append(decision)
    return [Issued(_build(want, decision), decision.expire) for want, decision in zip(wanted, decisions)]


def _build(want: TokenRequest, decision: PolicyDecision) -> str:
    config = current_app.config
    app_id, cert, life = config["APP_ID"], config["APP_CERTIFICATE"], decision.expire
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


def token_headers(issued: Issued) -> dict[str, str]:
    return {"X-Token-Expire": str(issued.expire)}
