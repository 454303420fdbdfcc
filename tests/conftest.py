"""Shared fixtures: the app on a test configuration, its client, and ``make_jwt``."""
from __future__ import annotations

import time
from pathlib import Path

import jwt as pyjwt
import pytest

from app import create_app

DATA = Path(__file__).parent / "data"
APP_ID = "970CA35de60c44645bbae8a215061b33"
APP_CERTIFICATE = "5CFd2fd1755d40ecb72977518be15d3b"
JWT_SECRET = "test-secret-that-is-long-enough-0123456789"
ISSUER = "https://idp.test/"
AUDIENCE = "agora-token-server"

BASE_ENV = {
    "APP_ID": APP_ID,
    "APP_CERTIFICATE": APP_CERTIFICATE,
    "JWT_SECRET": JWT_SECRET,
    "JWT_ALGORITHMS": "HS256",
    "JWT_ISSUER": ISSUER,
    "JWT_AUDIENCE": AUDIENCE,
    "POLICY_FILE": str(DATA / "policy.yaml"),
    "RATE_LIMIT_PER_USER": "10000/minute",
    "RATE_LIMIT_PER_IP": "100000/minute",
    "ENV_FILE": str(DATA / "no-such.env"),
}


def sign_jwt(sub: str = "alice", *, groups=None, lifetime: int = 600, secret: str = JWT_SECRET,
             algorithm: str = "HS256", headers=None, **claims) -> str:
    """A JWT the test configuration accepts (override anything to make one it refuses)."""
    now = int(time.time())
    payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + lifetime}
    if groups is not None:
        payload["groups"] = groups
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return pyjwt.encode(payload, secret, algorithm=algorithm, headers=headers)


@pytest.fixture
def logs(caplog):
    """caplog, attached to the service's own (non-propagating) JSON loggers."""
    import logging

    logger = logging.getLogger("agora_token_server")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="agora_token_server")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def env():
    return dict(BASE_ENV)


@pytest.fixture
def app(env):
    return create_app({"ENV": env, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_jwt():
    return sign_jwt


@pytest.fixture
def bearer(make_jwt):
    """Authorization headers for a caller; ``bearer()`` is an all-powerful 'ops' user."""
    def headers(sub: str = "ops-user", groups=("ops",), **claims):
        return {"Authorization": f"Bearer {make_jwt(sub, groups=list(groups), **claims)}"}
    return headers
