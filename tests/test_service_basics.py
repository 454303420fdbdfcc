"""Health checks, CORS, request ids, settings validation and what the logs may contain."""
from __future__ import annotations

import json

import pytest

from api.extension import token_server
from app import create_app
from config.environment import read_env_file
from config.names import ConfigError
from config.pinned import read_configuration
from tests.credentials import APP_CERTIFICATE, APP_ID, JWT_SECRET


def test_ping(client):
    r = client.get("/ping")
    assert r.status_code == 200
    assert r.json == {"message": "pong"}


def test_healthz_names_app_id_never_certificate(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json["status"] == "ok"
    assert r.json["app_id"] == APP_ID
    assert APP_CERTIFICATE not in r.get_data(as_text=True)


def test_preflight_needs_no_authentication(client):
    r = client.options("/getToken", headers={
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://app.example.com")
    allowed = r.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_cors_on_errors_and_vary(client):
    r = client.get("/rtm/bob/", headers={"Origin": "https://app.example.com"})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://app.example.com")
    assert "Origin" in r.headers["Vary"]


def test_cors_allowlist(env, bearer):
    env["CORS_ALLOW_ORIGIN"] = "https://good.example, https://other.example"
    client = create_app(env).test_client()
    good = client.get("/rtm/bob/", headers={"Origin": "https://good.example", **bearer()})
    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    bad = client.get("/rtm/bob/", headers={"Origin": "https://evil.example", **bearer()})
    assert "Access-Control-Allow-Origin" not in bad.headers
    assert "Origin" in bad.headers["Vary"]


@pytest.mark.parametrize("given", ["0f9c2a4e-8b1d-4c3e-9a7f-2d6b5e1c0a93", "abc-1234", "A_b.c-" + "9" * 58])
def test_a_request_id_that_looks_like_one_is_echoed(client, given):
    assert client.get("/ping", headers={"X-Request-Id": given}).headers["X-Request-Id"] == given


@pytest.mark.parametrize("given", ["bad id with spaces", "abc-123", "x" * 65, "id\u2028x", "a/b/c/d/e", "\"quoted\""])
def test_any_other_request_id_is_replaced_by_our_own(client, given):
    generated = client.get("/ping", headers={"X-Request-Id": given}).headers["X-Request-Id"]
    assert generated != given and len(generated) == 16 and int(generated, 16) >= 0


@pytest.mark.parametrize("name, value, message", [
    ("APP_ID", "", "APP_ID is not set"),
    ("APP_ID", "abc", "APP_ID must be 32 hexadecimal"),
    ("APP_CERTIFICATE", "z" * 32, "APP_CERTIFICATE must be 32 hexadecimal"),
    ("DEFAULT_EXPIRE", "0", "DEFAULT_EXPIRE must be between 1 and 86400"),
    ("DEFAULT_EXPIRE", "soon", "DEFAULT_EXPIRE must be a whole number"),
    ("PORT", "99999", "PORT must be between"),
    ("CORS_ALLOW_ORIGIN", "not an origin", "CORS_ALLOW_ORIGIN"),
    ("POLICY_FILE", "/no/such/policy.yaml", "POLICY_FILE"),
    ("RATE_LIMIT_PER_USER", "lots", "RATE_LIMIT_PER_USER"),
    ("TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES"),
])
def test_bad_settings_refuse_to_start(env, name, value, message):
    env[name] = value
    with pytest.raises(ConfigError) as info:
        create_app(env)
    assert message in str(info.value)


def test_missing_policy_refuses_to_start(env):
    del env["POLICY_FILE"]
    with pytest.raises(ConfigError, match="POLICY_FILE is not set"):
        create_app(env)


def test_demo_fallback_only_when_asked(env):
    minimal = {"ENV_FILE": env["ENV_FILE"]}
    with pytest.raises(ConfigError, match="APP_ID is not set"):
        create_app(read_configuration(minimal))
    app = create_app(read_configuration({**minimal, "DEMO_FALLBACK": "1"}))
    assert app.config["DEMO"] is True
    assert app.test_client().get("/healthz").json["demo"] is True


def test_dotenv_file_fills_unset_variables(env, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport DEFAULT_EXPIRE=777\nAPP_ID='%s'\n" % ("a" * 32))
    env["ENV_FILE"] = str(dotenv)
    app = create_app(read_configuration(env))
    assert app.config["DEFAULT_EXPIRE"] == 777
    assert app.config["APP_ID"] == env["APP_ID"]  # the environment wins over the file


def test_dotenv_file_is_read_as_python_dotenv_reads_it(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\n\nexport A=1\nB='two words'\nC=\"x\\ny\"\nD = spaced\nE=value # note\n"
                      "F=\nG='${A}'\nH=${A}\nJWT_PUBLIC_KEY=\"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\"\n")
    assert read_env_file(dotenv) == {
        "A": "1", "B": "two words", "C": "x\ny", "D": "spaced", "E": "value", "F": "", "G": "${A}",
        "H": "${A}",  # taken literally: a secret may hold "${"
        "JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
    }


@pytest.mark.parametrize("line, words", [
    ("=value", "expected KEY=value"),
    ("KEY: value", "expected KEY=value"),
    ('KEY="not closed', "expected KEY=value"),
    ("APP_ID", "expected KEY=value, got 'APP_ID' alone (write APP_ID= for an empty value)"),
    ("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", "got 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA' alone"),
])
def test_a_line_dotenv_cannot_read_refuses_to_start_naming_the_file_and_line(env, tmp_path, line, words):
    dotenv = tmp_path / "service.env"
    dotenv.write_text(f"# settings\nDEFAULT_EXPIRE=700\n{line}\nLOG_LEVEL=DEBUG\n")
    env["ENV_FILE"] = str(dotenv)
    with pytest.raises(ConfigError) as info:
        create_app(read_configuration(env))
    assert str(info.value).startswith(f"{dotenv}:3: "), info.value
    assert words in str(info.value)


def test_logs_carry_no_secrets(client, bearer, logs):
    headers = bearer()
    jwt_text = headers["Authorization"].split()[1]
    token = client.get("/rtc/ch/publisher/uid/5/?expiry=60", headers=headers).json["rtcToken"]
    client.get("/rtm/bob/", headers={"Authorization": "Bearer " + jwt_text[:-3] + "xyz"})
    lines = [getattr(r, "fields", {}) | {"msg": r.getMessage()} for r in logs.records]
    blob = json.dumps(lines)
    assert "expiry" not in blob  # no query strings
    for secret in (jwt_text, jwt_text[:-3], token, APP_CERTIFICATE, JWT_SECRET):
        assert secret not in blob
    access = [line for line in lines if line.get("path") == "/rtc/ch/publisher/uid/5/"]
    assert access and access[0]["status"] == 200 and access[0]["method"] == "GET"
    audits = [line for line in lines if line.get("decision") == "granted"]
    assert audits[0]["channel"] == "ch" and audits[0]["uid"] == 5 and audits[0]["lifetime"] == 60
    assert audits[0]["subject"] == "ops-user" and audits[0]["role"] == "publisher"


def _reachable(root, depth: int = 3):
    """``root`` and what its attributes, items and values hold, ``depth`` levels down: what an
    error reporter that captures frame locals would print."""
    seen, level = {}, [root]
    for _ in range(depth + 1):
        following = []
        for obj in level:
            if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
                continue
            seen[id(obj)] = obj
            if isinstance(obj, dict):
                following += [*obj.keys(), *obj.values()]
            elif isinstance(obj, (list, tuple, set, frozenset)):
                following += list(obj)
            following += list(getattr(obj, "__dict__", {}).values())
            following += [getattr(obj, name, None) for name in getattr(type(obj), "__slots__", ())]
        level = following
    return list(seen.values())


def test_no_secret_is_in_any_repr_on_the_request_path(app):
    secrets = (APP_CERTIFICATE, JWT_SECRET, repr(JWT_SECRET.encode()))
    assert not any(secret in repr(app.config) for secret in secrets)
    holders = _reachable({"extensions": app.extensions, "config": app.config})
    assert holders
    for obj in holders:
        text = repr(obj) + str(obj)
        assert not any(secret in text for secret in secrets), type(obj)


def test_a_log_stream_that_fails_fails_no_request(client, bearer, monkeypatch):
    import os

    from api import observability

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, as when a log collector goes away
    monkeypatch.setattr(observability._handler[0], "fd", write_end)
    try:
        assert client.get("/rtm/bob/", headers=bearer()).status_code == 200
        assert client.get("/nope").status_code == 404
    finally:
        os.close(write_end)


def test_unicode_line_breaks_from_a_client_never_split_a_log_line(client, bearer, monkeypatch, tmp_path):
    import os

    from api import observability

    breaks = "\u2028\u2029\u0085"
    log = tmp_path / "log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT)
    monkeypatch.setattr(observability._handler[0], "fd", fd)
    try:
        client.get(f"/nope{breaks}")
        client.get("/rtm/bob/", headers=bearer(f"eve{breaks}"))
    finally:
        os.close(fd)
    out = log.read_text(encoding="utf-8")
    assert out and not any(ch in out for ch in breaks)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert f"/nope{breaks}" in [line.get("path") for line in lines]
    assert f"eve{breaks}" in [line.get("subject") for line in lines]


def test_a_redis_password_is_in_no_repr_and_no_error_message(env):
    from config.settings import settings_from_environment

    env["RATELIMIT_STORAGE_URI"] = "redis://:hunter2-redis-pass@127.0.0.1:1/0"
    configuration = read_configuration(env)
    settings = settings_from_environment(configuration)
    assert "hunter2" not in repr(settings) and "hunter2" not in repr(configuration)
    assert APP_CERTIFICATE not in repr(configuration) and JWT_SECRET not in repr(configuration)
    # Nor in the config debuggers and error reporters print, the URI's or an option's, while
    # redis-py is given it all the same.
    app = create_app({**env, "RATELIMIT_STORAGE_OPTIONS": '{"password": "hunter2-opt"}'})
    assert "hunter2" not in repr(app.config)
    pool = token_server(app).limiter.storage.backend.storage.connection_pool
    assert pool.connection_kwargs["password"] == "hunter2-redis-pass"
    with pytest.raises(ConfigError) as refused:
        settings_from_environment({**configuration,
                                   "RATELIMIT_STORAGE_URI": "nosuch://:hunter2-redis-pass@h:1/0"})
    assert "hunter2" not in str(refused.value) and "nosuch://:***@h:1/0" in str(refused.value)
