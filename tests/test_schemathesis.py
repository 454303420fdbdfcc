"""Schema-driven fuzzing: schemathesis against the Procfile's gunicorn, with a valid JWT and without.

Every operation in the served /openapi.json gets its documented examples, schemathesis's
coverage cases (boundaries, missing and wrong-typed values, other methods) and at most
``MAX_EXAMPLES`` generated cases. No answer may be a 5xx, and every answer must be one the
document lists: its status, content type, headers and body schema. The seed is random; a
failure prints it with a curl command for each failing case.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import BASE_ENV
from tests.credentials import sign_jwt
from tools.procs import VENV_BIN, gunicorn

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25  # per operation and phase: ~800 requests, ~8 s a run
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
# Fuzzing must never be throttled: a 429 would hide what the route itself answers.
FUZZ_ENV = {**BASE_ENV, "RATE_LIMIT_PER_USER": "1000000/minute", "RATE_LIMIT_PER_IP": "1000000/minute"}


@pytest.fixture(scope="module")
def service():
    with gunicorn(FUZZ_ENV, workers=2) as svc:
        yield svc


def schemathesis_run(service, cwd, *options: str) -> str:
    """``st run`` on the served document; asserts a clean exit and returns its report."""
    argv = [str(VENV_BIN / "st"), "run", f"{service.url}/openapi.json",
            "--checks", ",".join(CHECKS), "--max-examples", str(MAX_EXAMPLES),
            "--request-timeout", "5", "--generation-database", "none", "--no-color",
            # Hypothesis's too_slow judges how long generating the cases takes, which a busy
            # machine stretches; it says nothing of the service (as in test_tokens_properties.py).
            "--suppress-health-check", "too_slow", *options]
    # cwd: no schemathesis.toml or .hypothesis of the repository's; env: no SCHEMATHESIS_* either.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "No issues found" in report or "passed" in report, report
    return report


def test_fuzz_with_a_valid_jwt(service, tmp_path):
    token = sign_jwt("ops-user", groups=["ops"], lifetime=600)
    report = schemathesis_run(service, tmp_path, "--header", f"Authorization: Bearer {token}")
    # The JWT worked: operations answered more than 401/403, so the fuzzing reached the views.
    assert "Authentication failed" not in report, report


def test_fuzz_without_a_jwt(service, tmp_path):
    report = schemathesis_run(service, tmp_path)
    assert "Authentication failed" in report, "token routes should have answered only 401"
