"""``python -m tokens``: every command, ``inspect``, the environment, and errors.

A few cases run the real command (``sys.executable -m tokens``); the rest call
``tokens.__main__.main`` in-process, which is the same code without a process start each.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokens
from tests.credentials import APP_ID
from tests.credentials import APP_CERTIFICATE as CERT  # the short name these tests use
from tests.test_tokens_vectors import CHAT_VECTOR, RTC_VECTOR
from tokens import Role
from tokens.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
FIXED = ["--issue-ts", "1111111", "--salt", "1"]
KW = {"issue_ts": 1111111, "salt": 1}


def run_cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("APP_ID", "APP_CERTIFICATE")}
    return subprocess.run([sys.executable, "-m", "tokens", *argv], cwd=ROOT, env={**environ, **(env or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("APP_ID", APP_ID)
    monkeypatch.setenv("APP_CERTIFICATE", CERT)


@pytest.fixture
def no_credentials(monkeypatch):
    monkeypatch.delenv("APP_ID", raising=False)
    monkeypatch.delenv("APP_CERTIFICATE", raising=False)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the real command -------------------------------------------------------------------------

def test_command_reproduces_the_published_vector():
    done = run_cli("rtc", "--channel", "7d72365eb983485397e3e3f9d460bdda", "--uid", "2882341273",
                   "--role", "subscriber", "--expire", "600", "--privilege-expire", "600", *FIXED,
                   env={"APP_ID": APP_ID, "APP_CERTIFICATE": CERT})
    assert (done.returncode, done.stdout, done.stderr) == (0, RTC_VECTOR + "\n", "")


def test_command_inspects_and_verifies():
    done = run_cli("inspect", CHAT_VECTOR, "--app-certificate", CERT)
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout) == {
        "version": "007", "app_id": APP_ID, "issue_ts": 1111111, "expire": 600, "expires_at": 1111711, "salt": 1,
        "services": [{"type": 5, "name": "chat", "user_id": "2882341273", "privileges": {"user": 600}}],
        "signature_valid": True,
    }


@pytest.mark.parametrize("argv", [
    ["rtm", "--user", "bob", "--expire", "600"],  # no credentials in the environment
    ["inspect", "007not-base64!"],
    ["rtc", "--channel", "a/b", "--uid", "1", "--role", "publisher", "--expire", "60", "--app-id", APP_ID,
     "--app-certificate", CERT],
])
def test_command_errors_are_one_line_and_status_2(argv):
    done = run_cli(*argv)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


# -- every builder ----------------------------------------------------------------------------

RTC_ARGS = ["--channel", "lobby", "--uid", "42", "--role", "publisher", "--expire", "600",
            "--privilege-expire", "300"]
COMMANDS = {
    "rtc": (["rtc", *RTC_ARGS], lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", 42, Role.PUBLISHER, 600, 300, **KW)),
    "rtc account subscriber": (
        ["rtc", "--channel", "lobby", "--account", "alice", "--role", "2", "--expire", "600"],
        lambda: tokens.build_rtc_token(APP_ID, CERT, "lobby", "alice", Role.SUBSCRIBER, 600, **KW)),
    "rtc-privileges": (
        ["rtc-privileges", "--channel", "lobby", "--uid", "0", "--expire", "600", "--join-expire", "10",
         "--publish-audio-expire", "20", "--publish-video-expire", "30", "--publish-data-expire", "40"],
        lambda: tokens.build_rtc_token_with_privileges(APP_ID, CERT, "lobby", 0, 600, 10, 20, 30, 40, **KW)),
    "rtc-rtm": (
        ["rtc-rtm", *RTC_ARGS, "--rtm-user", "bob", "--rtm-expire", "60"],
        lambda: tokens.build_rtc_rtm_token(APP_ID, CERT, "lobby", 42, Role.PUBLISHER, 600, 300, rtm_user="bob",
                                           rtm_expire=60, **KW)),
    "rtm": (["rtm", "--user", "bob", "--expire", "600"], lambda: tokens.build_rtm_token(APP_ID, CERT, "bob", 600, **KW)),
    "rtm2": (
        ["rtm2", "--user", "bob", "--expire", "600", "--permission", "message_channels:read:news",
         "--permission", "message_channels:read:lobby", "--permission", "USERS:write:carol"],
        lambda: tokens.build_rtm2_token(APP_ID, CERT, "bob", 600, {0: {0: ["news", "lobby"]}, 4: {1: ["carol"]}},
                                        **KW)),
    "chat user": (["chat", "--user", "bob", "--expire", "600"],
                  lambda: tokens.build_chat_user_token(APP_ID, CERT, "bob", 600, **KW)),
    "chat app": (["chat", "--expire", "600"], lambda: tokens.build_chat_app_token(APP_ID, CERT, 600, **KW)),
    "fpa": (["fpa"], lambda: tokens.build_fpa_token(APP_ID, CERT, **KW)),
    "apaas room user": (["apaas", "--room", "r1", "--user", "u1", "--role", "2", "--expire", "600"],
                        lambda: tokens.build_apaas_room_user_token(APP_ID, CERT, "r1", "u1", 2, 600, **KW)),
    "apaas user": (["apaas", "--user", "u1", "--expire", "600"],
                   lambda: tokens.build_apaas_user_token(APP_ID, CERT, "u1", 600, **KW)),
    "apaas app": (["apaas", "--expire", "600"], lambda: tokens.build_apaas_app_token(APP_ID, CERT, 600, **KW)),
    "convoai": (["convoai", *RTC_ARGS],
                lambda: tokens.build_conversational_ai_token(APP_ID, CERT, "lobby", 42, 1, 600, 300, **KW)),
    "stt": (["stt", *RTC_ARGS, "--rtm-user", "stt-bot"],
            lambda: tokens.build_speech_to_text_token(APP_ID, CERT, "lobby", 42, 1, 600, 300, rtm_user="stt-bot",
                                                      **KW)),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_builds_what_the_library_builds(capsys, credentials, name):
    argv, build = COMMANDS[name]
    code, out, err = cli(capsys, *argv, *FIXED)
    assert (code, err) == (0, "")
    assert out == build() + "\n"
    assert tokens.parse_token(out.strip()).verify(CERT)


def test_without_fixed_time_and_salt_each_token_differs(capsys, credentials):
    outs = {cli(capsys, "rtm", "--user", "bob", "--expire", "600")[1] for _ in range(5)}
    assert len(outs) == 5
    assert all(tokens.parse_token(o.strip()).verify(CERT) for o in outs)


def test_flags_override_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("APP_ID", "0" * 32)
    monkeypatch.setenv("APP_CERTIFICATE", "1" * 32)
    code, out, _ = cli(capsys, "chat", "--user", "2882341273", "--expire", "600", "--app-id", APP_ID,
                       "--app-certificate", CERT, *FIXED)
    assert (code, out) == (0, CHAT_VECTOR + "\n")
    code, out, _ = cli(capsys, "chat", "--user", "2882341273", "--expire", "600", *FIXED)
    assert code == 0 and tokens.parse_token(out.strip()).app_id == "0" * 32


# -- inspect ----------------------------------------------------------------------------------

def test_inspect_without_certificate_does_not_claim_validity(capsys, no_credentials):
    code, out, err = cli(capsys, "inspect", RTC_VECTOR)
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert "signature_valid" not in report
    assert report["services"] == [{"type": 1, "name": "rtc", "channel_name": "7d72365eb983485397e3e3f9d460bdda",
                                   "uid": "2882341273", "privileges": {"join_channel": 600}}]


def test_inspect_with_the_wrong_certificate(capsys):
    code, out, _ = cli(capsys, "inspect", RTC_VECTOR, "--app-certificate", "0" * 32)
    assert code == 0 and json.loads(out)["signature_valid"] is False


def test_inspect_names_every_service(capsys, credentials):
    _, token, _ = cli(capsys, "apaas", "--room", "r1", "--user", "u1", "--role", "2", "--expire", "600", *FIXED)
    _, out, _ = cli(capsys, "inspect", token.strip(), "--app-certificate", CERT)
    report = json.loads(out)
    assert report["signature_valid"] is True
    assert [(s["name"], s["privileges"]) for s in report["services"]] == [
        ("rtm", {"login": 600}), ("chat", {"user": 600}), ("apaas", {})]
    assert report["services"][2] | {"privileges": None} == {
        "type": 7, "name": "apaas", "room_uuid": "r1", "user_uuid": "u1", "role": 2, "privileges": None}


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: command"),
    (["nope"], "invalid choice: 'nope'"),
    (["rtc", "--channel", "lobby", "--uid", "1", "--expire", "60"], "--role"),
    (["rtc", "--channel", "lobby", "--uid", "1", "--account", "a", "--role", "publisher", "--expire", "60"],
     "not allowed with argument"),
    (["rtc", "--channel", "lobby", "--uid", "x", "--role", "publisher", "--expire", "60"], "uid must be a whole number"),
    (["rtc", "--channel", "lobby", "--uid", "1", "--role", "admin", "--expire", "60"],
     "role must be one of publisher, host, broadcaster, 1, subscriber, audience or 2"),
    (["rtc", "--channel", "lobby", "--uid", "4294967296", "--role", "1", "--expire", "60"],
     "uid 4294967296 is out of range"),
    (["rtc", "--channel", "lobby", "--uid", "1", "--role", "1", "--expire", "86401"], "at most 86400"),
    (["rtc", "--channel", "lobby", "--uid", "1", "--role", "1", "--expire", "sixty"], "invalid int value"),
    (["rtm", "--user", "bob", "--expire", "60", "--salt", "0"], "salt must be in 1…99999999"),
    (["rtm", "--user", "bob", "--expire", "60", "--issue-ts", "-1"], "issue_ts must be Unix seconds"),
    (["rtm", "--user", "", "--expire", "60"], "RTM user id is empty"),
    (["rtm2", "--user", "bob", "--expire", "60", "--permission", "rooms:read:x"], "is not RESOURCE:read|write:NAME"),
    (["rtm2", "--user", "bob", "--expire", "60", "--permission", "users:read:"], "RTM resource name is empty"),
    (["apaas", "--room", "r1", "--expire", "60"], "needs --room, --user and --role"),
    (["apaas", "--room", "r1", "--user", "u", "--role", "40000", "--expire", "60"], "16-bit integer"),
    (["chat", "--expire", "60", "--app-id", "xyz"], "app_id must be 32 hexadecimal"),
    (["inspect"], "the following arguments are required: token"),
    (["inspect", "006abc"], "must start with '007'"),
    (["inspect", "007" + "A" * 40_000], "characters long"),
])
def test_errors(capsys, credentials, argv, message):
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err


def test_missing_credentials(capsys, no_credentials):
    code, out, err = cli(capsys, "rtm", "--user", "bob", "--expire", "60")
    assert (code, out, err) == (2, "", "error: --app-id / APP_ID is not set\n")
    code, out, err = cli(capsys, "rtm", "--user", "bob", "--expire", "60", "--app-id", APP_ID)
    assert (code, out, err) == (2, "", "error: --app-certificate / APP_CERTIFICATE is not set\n")


def test_help(capsys):
    code, out, err = cli(capsys, "--help")
    assert code == 0 and out.startswith("usage: python -m tokens") and err == ""
    code, out, _ = cli(capsys, "rtm2", "--help")
    assert code == 0 and "RESOURCE:read|write:NAME" in out
