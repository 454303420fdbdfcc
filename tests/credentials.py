"""The tests' credentials, and the one way a test signs a JWT.

    from tests.credentials import APP_CERTIFICATE, APP_ID, JWT_SECRET, make_jwt, sign_jwt

``APP_ID`` and ``APP_CERTIFICATE`` are the pair Agora's own test suites publish (and the demo
configuration uses): the vectors in test_tokens_vectors.py are made with them. ``JWT_SECRET``
is 64 bytes, enough for HS512 too, and is the test configuration's (conftest's ``BASE_ENV``).

- ``sign_jwt``: a JWT the test configuration accepts (issuer, audience, a subject and groups);
  override any claim, the key or the algorithm to make one it refuses.
- ``make_jwt``: any claims, signed by pyjwt, with only ``sub``/``iat``/``exp`` by default.
- ``sign_raw``: exactly the header and payload given, for what pyjwt refuses to encode.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

APP_ID = "970CA35de60c44645bbae8a215061b33"
APP_CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
JWT_SECRET = "test-secret-for-hs512-needs-64-bytes-0123456789abcdefghijklmnopq"
ISSUER = "https://idp.test/"
AUDIENCE = "agora-token-server"
assert len(JWT_SECRET) == 64

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def default_claims(lifetime: int = 300, **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "iat": now, "exp": now + lifetime, **claims}


def make_jwt(
    claims: Mapping[str, Any] | None = None,
    *,
    key: Any = JWT_SECRET,
    algorithm: str = "HS256",
    headers: Mapping[str, Any] | None = None,
    lifetime: int = 300,
    omit: Iterable[str] = (),
) -> str:
    """A JWT signed by pyjwt: ``sub``/``iat``/``exp`` defaults, overridden by ``claims``.

    ``omit`` drops claims (``omit=("exp",)``); ``key`` is the secret or a private key object.
    """
    payload = {**default_claims(lifetime), **(claims or {})}
    for name in omit:
        payload.pop(name, None)
    return jwt.encode(payload, key, algorithm=algorithm, headers=dict(headers or {}))


def sign_jwt(sub: str | None = "alice", *, groups: list[str] | None = None, lifetime: int = 600,
             key: Any = JWT_SECRET, algorithm: str = "HS256", headers: Mapping[str, Any] | None = None,
             **claims: Any) -> str:
    """A JWT the test configuration accepts, for ``sub`` in ``groups``; a claim given as None
    is left out (``exp=None``: a token without an expiry)."""
    claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, **({"groups": groups} if groups is not None else {}),
              **claims}
    return make_jwt({k: v for k, v in claims.items() if v is not None}, key=key, algorithm=algorithm,
                    headers=headers, lifetime=lifetime, omit=[k for k, v in claims.items() if v is None])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes,
             key: Any = JWT_SECRET, algorithm: str | None = None) -> str:
    """Sign exactly this header and payload (dicts are JSON-encoded, bytes are used as is).

    The signing algorithm is ``algorithm``, else the header's ``alg``, else HS256. ``HS*`` uses
    HMAC over ``key`` whatever it is (a PEM too: algorithm confusion); ``none`` (or a non-string
    ``alg``) gives an empty signature; anything else signs with the private ``key`` object.
    """
    raw_header = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw_payload = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(raw_header)}.{b64url(raw_payload)}".encode()
    alg = algorithm or (header.get("alg", "HS256") if isinstance(header, Mapping) else "HS256")
    if alg in _HASHES:
        secret = key if isinstance(key, bytes) else str(key).encode()
        signature = hmac.new(secret, signing_input, _HASHES[alg]).digest()
    elif not isinstance(alg, str) or alg.lower() == "none":
        signature = b""
    else:
        signature = jwt.get_algorithm_by_name(alg).sign(signing_input, key)
    return f"{signing_input.decode()}.{b64url(signature)}"
