"""The README's quick start, run as a newcomer runs it in a fresh clone.

`make run` starts on the demo configuration (no APP_ID anywhere), then the README's own
dev-jwt and curl lines, taken from the code block under its "Quick start" heading with only
the port changed, run in bash and must print a token.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tools.procs import ROOT, free_port, stop, wait_for_port

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
QUICK_START = "## Quick start"
README_ADDRESS = "127.0.0.1:8080"
# What a newcomer's shell does not have: credentials, another settings file, a port, and the
# variables of the `make test` this test may be running under.
NOT_IN_A_FRESH_SHELL = ("APP_ID", "APP_CERTIFICATE", "ENV_FILE", "PORT", "SERVER_PORT", "DEMO_FALLBACK",
                        "DEMO_MODE", "PROMETHEUS_MULTIPROC_DIR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                        "MAKEOVERRIDES")


def quick_start_blocks() -> list[str]:
    """The fenced code blocks of the README's quick-start section, in order."""
    text = README.read_text(encoding="utf-8")
    assert QUICK_START in text, f"README.md has no {QUICK_START!r} heading"
    section = text.split(QUICK_START, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```[a-z]*\n(.*?)^```", section, re.S | re.M)


def fresh_shell_environment(tmp_path) -> dict[str, str]:
    """This environment without what a fresh clone's shell would not set. A developer's own
    .env must not change the answer either: the settings file is an empty one, and the flask
    command under `make dev-jwt` is told not to load .env."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in NOT_IN_A_FRESH_SHELL}
    return {**env, "ENV_FILE": str(empty), "FLASK_SKIP_DOTENV": "1"}


def stop_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Stop `make run` and the gunicorn under it: SIGTERM to the whole process group, as Ctrl-C
    reaches every process in a terminal's foreground group; SIGKILL for what outlives it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    stop(proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)


def test_the_readme_names_the_two_commands():
    commands = [line.split("#")[0].strip() for line in quick_start_blocks()[0].splitlines()]
    assert commands[:2] == ["make run", "make test"]


def test_the_quick_start_curl_gets_a_token_from_make_run(tmp_path):
    (first_curl,) = [block for block in quick_start_blocks() if "dev-jwt" in block]
    assert README_ADDRESS in first_curl and "curl " in first_curl
    env = fresh_shell_environment(tmp_path)
    port = free_port()
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        service = subprocess.Popen(["make", "run"], cwd=ROOT, env={**env, "PORT": str(port)},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc=service, timeout=180)  # the first `make` installs .venv
        shell = subprocess.run(["bash", "-e", "-c", first_curl.replace(README_ADDRESS, f"127.0.0.1:{port}")],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        stop_group(service)
    started = log_path.read_text(errors="replace")
    assert "DEMO CONFIGURATION" in started, started
    assert shell.returncode == 0, shell.stderr
    answer = json.loads(shell.stdout)
    tokens = [value for key, value in answer.items() if key.lower().endswith("token")]
    assert tokens and all(token.startswith("007") for token in tokens), answer
