"""api/extension.py: the service is one Flask extension under one key, a request meets the
hooks in the order ``TokenServer.init_app`` lists, and its JSON provider writes what Flask's
own would, keeping the answers' field order."""
from __future__ import annotations

import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from api import observability
from api.extension import EXTENSION, TokenServer, token_server
from app import create_app


def test_the_service_is_one_extension_under_one_key(app):
    # Ours, and flask-limiter's own (a set of the Limiters on the app).
    assert set(app.extensions) == {EXTENSION, "limiter"}
    server = token_server(app)
    assert isinstance(server, TokenServer)
    assert app.extensions["limiter"] == {server.limiter}
    assert server.signer.app_id == server.settings.app_id == app.config["APP_ID"]
    assert set(server.health_checks) == {"rate_limit_storage"}


def test_secrets_stay_out_of_app_config_while_flasks_own_keys_come_in(env):
    app = create_app({**env, "TESTING": True})
    assert app.config["TESTING"] is True
    assert {"APP_CERTIFICATE", "JWT_SECRET", "POLICY_TEXT"}.isdisjoint(app.config)
    assert env["APP_CERTIFICATE"] not in repr(token_server(app).signer)


def test_hooks_run_in_the_order_init_app_lists(app):
    server = token_server(app)
    before = app.before_request_funcs[None]
    assert before[0] is observability.request_started  # 1: the clock, before the limiter (2)
    assert len(before) == 2 and before[1].__self__ is server.limiter
    after = app.after_request_funcs[None]
    assert after[0] == server._finish  # registered first: Flask runs it last, after CORS and the limiter
    assert len(after) == 3


def test_the_last_step_sees_the_headers_the_libraries_wrote(client, bearer):
    r = client.get("/rtm/bob/", headers={**bearer(), "Origin": "https://app.example.com"})
    assert r.status_code == 200
    # flask-limiter wrote Retry-After on a 200 and _finish removed it; flask-cors' answer got Vary.
    assert "Retry-After" not in r.headers and "X-RateLimit-Limit" in r.headers
    assert r.headers["Access-Control-Allow-Origin"] and "Origin" in r.headers["Vary"]
    assert r.headers["X-Request-Id"] and r.headers["Cache-Control"].startswith("private, no-cache")


def test_an_operators_health_check_is_reported_by_healthz(app):
    token_server(app).health_checks["reports_db"] = lambda: "degraded"
    assert app.test_client().get("/healthz").json["reports_db"] == "degraded"


def test_built_the_flask_limiter_way_with_the_app_given_or_later(app):
    server = token_server(app)
    unbound = TokenServer(server.settings, server.auth)
    with pytest.raises(RuntimeError, match="not initialized"):
        _ = unbound.limiter
    other = Flask("other")
    bound = TokenServer(server.settings, server.auth, other)
    assert token_server(other) is bound and bound.limiter is not server.limiter
    with pytest.raises(RuntimeError, match="one app"):
        bound.init_app(Flask("a third"))


def test_the_encoder_built_once_writes_what_flasks_own_writes(app):
    value = {"z": 1, "a": ["é", "\u2028"], "id": uuid.UUID(int=7)}
    flasks = DefaultJSONProvider(app)
    flasks.sort_keys = False
    assert app.json.dumps(value, separators=(",", ":")) == flasks.dumps(value, separators=(",", ":"))
    assert app.json.dumps(value) == flasks.dumps(value)  # other arguments: Flask's path


def test_a_changed_setting_is_honoured(app):
    app.json.ensure_ascii = False
    assert app.json.dumps({"a": "é"}, separators=(",", ":")) == '{"a":"é"}'
    app.json.sort_keys = True
    assert app.json.dumps({"b": 1, "a": 2}, separators=(",", ":")) == '{"a":2,"b":1}'
