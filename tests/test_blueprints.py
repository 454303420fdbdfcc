"""The service as a Flask engineer extends it: blueprints behind the JWT middleware, flask-limiter
limits on routes, flask-cors on every answer."""
from __future__ import annotations

import pytest
from flask import g, jsonify

from api import TOKEN_BLUEPRINTS
from api.guard import ProtectedBlueprint, authenticate_caller
from api.extension import token_server
from app import create_app

ORIGIN = {"Origin": "https://app.example.com"}
TOKEN_PATHS = [  # one request per token rule, answered 200 for the test config's 'ops' group
    ("POST", "/fetch_rtc_token", {"uid": 1, "ChannelName": "c", "role": 1}),
    ("GET", "/rtc/c/publisher/uid/1/", None),
    ("GET", "/rte/c/publisher/uid/1/", None),
    ("GET", "/rte/c/publisher/uid/1/bob/", None),
    ("GET", "/access_token?channel=c&uid=1", None),
    ("GET", "/v1/token?channel_name=c", None),
    ("GET", "/rtm/bob/", None),
    ("GET", "/chat/app/", None),
    ("GET", "/chat/account/bob/", None),
    ("POST", "/generate-user-token", {"user_uuid": "bob"}),
    ("POST", "/generate-app-token", {}),
    ("POST", "/getToken", {"tokenType": "rtm", "uid": "bob"}),
]


def test_every_token_route_belongs_to_a_protected_blueprint(app):
    token_names = {bp.name for bp in TOKEN_BLUEPRINTS}
    assert {"rtc", "rtm", "chat"} <= token_names
    open_endpoints = {"health.ping", "health.healthz", "docs.openapi_json", "metrics.metrics", "static"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in open_endpoints:
            continue
        blueprint = rule.endpoint.rpartition(".")[0]
        assert blueprint in token_names, rule.rule
        assert authenticate_caller in app.before_request_funcs[blueprint], rule.rule


@pytest.mark.parametrize("method, path, body", TOKEN_PATHS)
def test_no_token_view_is_reachable_without_a_valid_jwt(client, bearer, method, path, body):
    assert client.open(path, method=method, json=body).status_code == 401
    assert client.open(path, method=method, json=body, headers={"Authorization": "Bearer x.y.z"}).status_code == 401
    assert client.open(path, method=method, json=body, headers=bearer()).status_code == 200


def test_each_token_rule_is_exercised_above(app):
    rules = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.partition(".")[0] in
             {bp.name for bp in TOKEN_BLUEPRINTS}}
    matched = {app.url_map.bind("localhost").match(path.partition("?")[0], method=method, return_rule=True)[0].rule
               for method, path, _ in TOKEN_PATHS}
    assert rules == matched


def operator_app(env):
    """What an operator's own wsgi.py does: our app, plus a blueprint of theirs behind the same
    middleware with a flask-limiter limit on one route."""
    app = create_app(env)
    limiter = token_server(app).limiter
    bp = ProtectedBlueprint("reports", __name__)

    @bp.get("/reports/<name>")
    @limiter.limit("2/minute")
    def report(name):
        """One report, for the caller the middleware verified."""
        return jsonify(report=name, subject=g.caller.subject)

    @bp.get("/reports")
    def reports():
        return jsonify(reports=[])

    app.register_blueprint(bp)
    return app


def test_an_operators_route_is_limited_as_flask_limiter_documents(env, bearer):
    client = operator_app(env).test_client()
    assert client.get("/reports/q3").status_code == 401  # behind the JWT middleware
    got = [client.get("/reports/q3", headers=bearer("alice")) for _ in range(3)]
    assert [r.status_code for r in got] == [200, 200, 429]
    assert got[0].json == {"report": "q3", "subject": "alice"}
    assert (got[1].headers["X-RateLimit-Limit"], got[1].headers["X-RateLimit-Remaining"]) == ("2", "0")
    assert got[2].json == {"error": "too many requests", "code": "429"}
    # flask-limiter's default key is the client address: another caller from it is refused too,
    # while the undecorated route and the token routes go on.
    assert client.get("/reports/q3", headers=bearer("bob")).status_code == 429
    assert client.get("/reports", headers=bearer("alice")).status_code == 200
    assert client.get("/rtm/bob/", headers=bearer("alice")).status_code == 200


def test_an_operators_route_counts_against_the_callers_own_limit_too(env, bearer):
    client = operator_app({**env, "RATE_LIMIT_PER_USER": "3/minute"}).test_client()
    assert [client.get(p, headers=bearer("carol")).status_code
            for p in ("/reports", "/rtm/bob/", "/reports", "/chat/app/")] == [200, 200, 200, 429]


def test_a_limit_on_a_protected_blueprint_counts_each_request_once(env, bearer):
    app = create_app(env)
    bp = ProtectedBlueprint("exports", __name__)

    @bp.get("/exports")
    def exports():
        return jsonify(exports=[])

    token_server(app).limiter.limit("3/minute")(bp)  # flask-limiter's blueprint-wide limit
    app.register_blueprint(bp)
    client = app.test_client()
    got = [client.get("/exports", headers=bearer("dana")) for _ in range(4)]
    assert [(r.status_code, r.headers["X-RateLimit-Remaining"]) for r in got] == [
        (200, "2"), (200, "1"), (200, "0"), (429, "0")]
    assert client.get("/exports").status_code == 401  # and never counted before authentication


def test_a_429_from_flask_limiter_is_our_json_error_with_cors(env, bearer):
    client = create_app({**env, "RATE_LIMIT_PER_USER": "1/minute"}).test_client()
    client.get("/rtm/bob/", headers=bearer())
    r = client.get("/rtm/bob/", headers={**bearer(), **ORIGIN})
    assert r.status_code == 429 and r.json == {"error": "too many requests", "code": "429"}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert 0 < int(r.headers["Retry-After"]) <= 60
    exposed = {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= exposed


def test_flask_answers_404_405_head_and_options(client, bearer):
    assert client.get("/no/such/route").json == {"error": "no such route", "code": "404"}
    r = client.delete("/rtm/bob/")
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    head = client.head("/rtm/bob/", headers=bearer())
    assert head.status_code == 200 and head.data == b"" and int(head.headers["Content-Length"]) > 0
    options = client.options("/getToken")
    assert options.status_code == 200 and "POST" in options.headers["Allow"]


def test_one_limiter_extension_per_app(env):
    first, second = create_app(env), create_app(env)
    assert len(first.extensions["limiter"]) == 1
    assert token_server(first).limiter is not token_server(second).limiter


def test_retry_after_only_where_it_means_something(env, bearer, make_jwt):
    client = create_app({**env, "RATE_LIMIT_PER_USER": "1/minute"}).test_client()
    ok = client.get("/rtm/bob/", headers=bearer())
    assert ok.status_code == 200 and "Retry-After" not in ok.headers and "X-RateLimit-Limit" in ok.headers
    assert "Retry-After" not in client.get("/ping").headers
    refused = client.get("/rtm/bob/", headers=bearer())
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60


def test_a_preflight_passes_but_a_view_that_answers_options_itself_is_protected(env, bearer):
    app = create_app(env)
    bp = ProtectedBlueprint("probe", __name__)

    @bp.route("/probe", methods=["GET", "OPTIONS"])
    def probe():
        return jsonify(subject=g.caller.subject)

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.options("/probe").status_code == 401
    assert client.options("/probe", headers=bearer("eve")).json == {"subject": "eve"}
    assert client.get("/healthz").json["rate_limit_storage"] == "ok"
    assert client.options("/rtm/bob/").status_code == 200  # Flask answers it: no JWT needed


def test_no_static_route_escapes_the_per_ip_limit(env):
    client = create_app({**env, "RATE_LIMIT_PER_IP": "2/minute"}).test_client()
    assert [client.get("/static/x").status_code for _ in range(3)] == [404, 404, 429]


def test_a_503_keeps_its_own_retry_after(env):
    from tests.jwtutil import rsa_key
    from tools.procs import free_port

    jwks_env = {k: v for k, v in env.items() if k != "JWT_SECRET"}
    client = create_app({**jwks_env, "JWT_ALGORITHMS": "RS256", "JWT_JWKS_COOLDOWN": "7",
                         "JWT_JWKS_URL": f"http://127.0.0.1:{free_port()}/jwks.json"}).test_client()
    from tests.credentials import sign_jwt

    token = sign_jwt("x", key=rsa_key(), algorithm="RS256", headers={"kid": "k1"})
    r = client.get("/rtm/bob/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
