"""What the benchmarks share: their service configuration's credentials and a JWT signer.

bench/ imports nothing from tests/ (a benchmark is not a test, and tests/ may change under it);
the processes it starts come from tools/procs.py, which the integration tests use too. The
Agora pair is the one Agora's own samples publish (and config/demo.env uses): not a real one.
"""
from __future__ import annotations

import time
from typing import Any

import jwt

APP_ID = "970CA35de60c44645bbae8a215061b33"
APP_CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
JWT_SECRET = "bench-secret-that-is-long-enough-0123456789"
ISSUER = "https://idp.bench/"
AUDIENCE = "agora-token-server"


def sign_jwt(sub: str, *, groups: list[str] | None = None, lifetime: int = 3600, secret: str = JWT_SECRET,
             **claims: Any) -> str:
    """An HS256 JWT for ``sub`` from ``ISSUER`` to ``AUDIENCE``; ``claims`` override any claim
    (``iss``, ``aud``, ``exp``...)."""
    now = int(time.time())
    payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + lifetime}
    if groups:
        payload["groups"] = groups
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")
