"""Shared fixtures: the app on the test configuration (``BASE_ENV``), its client, and
``make_jwt``. The credentials and the JWT signer are tests/credentials.py's."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from app import create_app
from tests.credentials import APP_CERTIFICATE, APP_ID, AUDIENCE, ISSUER, JWT_SECRET, sign_jwt

DATA = Path(__file__).parent / "data"

# `make test-fast` runs the property tests with a quarter of their examples (--hypothesis-profile=fast).
settings.register_profile("fast", max_examples=25)


def examples(n: int) -> int:
    """``n`` examples under Hypothesis' default profile (100 a test), in proportion under another."""
    return max(10, n * settings.default.max_examples // 100)

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
    return create_app({**env, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_jwt():
    """``tests.credentials.sign_jwt``: a JWT the test configuration accepts."""
    return sign_jwt


@pytest.fixture
def bearer(make_jwt):
    """Authorization headers for a caller; ``bearer()`` is an all-powerful 'ops' user."""
    def headers(sub: str = "ops-user", groups=("ops",), **claims):
        return {"Authorization": f"Bearer {make_jwt(sub, groups=list(groups), **claims)}"}
    return headers
