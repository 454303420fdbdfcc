"""The one path every contract takes: authorize → build → audit.

Contracts parse their own request shape into ``TokenRequest`` values and shape the answer;
everything that decides or signs happens here, once. The JWT middleware (api/guard.py) has
verified the caller before any contract runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from auth.models import TokenRequest
from exceptions import Forbidden

from . import metrics
from .extension import token_server
from .guard import caller
from .observability import audit

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
    server = token_server()
    policy, signer = server.auth.policy, server.signer
    decisions = []
    for want in wanted:
        decision = policy.decide(who, want)
        audit(who, want, decision)
        metrics.decided(want, decision)
        if not decision.granted:
            raise Forbidden(decision.reason)
        decisions.append(decision)
    built = [Issued(signer.build(want, decision), decision.expire)
             for want, decision in zip(wanted, decisions, strict=True)]
    for want in wanted:
        metrics.issued(want)
    return built
