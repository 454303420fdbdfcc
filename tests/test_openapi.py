"""openapi.yaml: a valid OpenAPI 3.1 document that matches the routes the app registers."""
from __future__ import annotations

import re

import pytest
import schemathesis

import tokens
from api import TOKEN_BLUEPRINTS, docs, params
from app import create_app

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # Flask adds these to every rule; CORS answers OPTIONS
TOKEN_ENDPOINTS = tuple(f"{bp.name}." for bp in TOKEN_BLUEPRINTS)
POST_ERRORS = {"408", "413"}
TOKEN_ERRORS = {"400", "401", "403", "429"}
GUNICORN_RESPONSES = {"UriTooLong"}  # answered by gunicorn itself, before the app: not our JSON
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")  # a path item's keys


@pytest.fixture(scope="module")
def document():
    return docs.load_openapi()


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method.upper(), operation


def _app_routes(app):
    """``{(path, METHOD): endpoint}`` for every route in ``app.url_map``, in OpenAPI's
    ``{name}`` path syntax."""
    rules = [(rule.rule, method, rule.endpoint) for rule in app.url_map.iter_rules()
             if rule.endpoint != "static" for method in rule.methods - AUTOMATIC_METHODS]
    return {(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule), method): endpoint
            for rule, method, endpoint in rules}


def deref(document, node):
    """``node``, following ``$ref`` pointers within the document."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/") and ref not in seen, ref
        seen.add(ref)
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def error_code(document, response) -> str:
    """The ``code`` an error response's schema fixes; its shape must be ``Error``'s."""
    schema = response["content"]["application/json"]["schema"]
    if "allOf" in schema:
        base, narrowed = schema["allOf"]
        assert base == {"$ref": "#/components/schemas/Error"}
        return narrowed["properties"]["code"]["const"]
    assert schema["required"] == ["error", "code"] and schema["additionalProperties"] is False
    return schema["properties"]["code"]["const"]


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema


def test_every_reference_resolves(document):
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                deref(document, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_routes_and_document_match(app, document):
    registered = set(_app_routes(app))
    documented = {(path, method) for path, method, _ in _operations(document)}
    assert registered - documented == set(), "routes missing from openapi.yaml"
    assert documented - registered == set(), "openapi.yaml documents routes the app does not have"


def test_security_open_routes_and_token_routes(app, document):
    routes = _app_routes(app)
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for path, method, operation in _operations(document):
        if routes[(path, method)].startswith(TOKEN_ENDPOINTS):
            assert "security" not in operation, f"{method} {path} is a token route: it needs the JWT"
        else:
            assert operation.get("security") == [], f"{method} {path} is open: security: []"


def test_every_operation_documents_its_errors(app, document):
    routes = _app_routes(app)
    for path, method, operation in _operations(document):
        codes = set(operation["responses"])
        assert "429" in codes, f"{method} {path}: every request counts against the per-IP limit"
        if routes[(path, method)].startswith(TOKEN_ENDPOINTS):
            assert codes >= TOKEN_ERRORS, f"{method} {path} misses {TOKEN_ERRORS - codes}"
        if method == "POST":
            assert codes >= POST_ERRORS, f"{method} {path} misses {POST_ERRORS - codes}"
            assert operation["requestBody"]["content"].keys() == {"application/json"}
        if "{" in path:
            assert "404" in codes, f"{method} {path}: a parameter holding '/' lands on no route"
        if operation.get("parameters"):
            assert "414" in codes, f"{method} {path}: parameters can make the request line too long"
        for status, response in operation["responses"].items():
            if status == "414":
                assert response == {"$ref": "#/components/responses/UriTooLong"}
            elif status >= "400":
                assert error_code(document, deref(document, response)) == status, f"{method} {path}"


def test_error_responses_share_one_shape(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "code"] and error["additionalProperties"] is False
    responses = document["components"]["responses"]
    for name, response in responses.items():
        if name not in GUNICORN_RESPONSES:
            assert re.fullmatch(r"[45]\d\d", error_code(document, response)), name
    assert responses["Unauthorized"]["headers"]["WWW-Authenticate"]
    assert responses["TooManyRequests"]["headers"].keys() >= {
        "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert responses["MethodNotAllowed"]["headers"]["Allow"]


def test_token_answers_say_the_lifetime(app, document):
    routes = _app_routes(app)
    for path, method, operation in _operations(document):
        if not routes[(path, method)].startswith(TOKEN_ENDPOINTS):
            continue
        ok = operation["responses"]["200"]
        assert "X-Token-Expire" in ok["headers"], f"{method} {path}"
        (media, content), = ok["content"].items()
        if media == "application/json":
            schema = deref(document, content["schema"])
            assert "expire" in schema["required"], f"{method} {path}"
        else:
            assert (path, media) == ("/v1/token", "text/plain")


@pytest.mark.parametrize("name, valid", [
    ("live-1", True), ("a", True), ("x" * 63, True), ("x" * 64, False), ("*", True), ("", False),
    ("a b!#$%&()+-:;<=.>?@[]^_{}|~,", True), ("a/b", False), ("a\x00", False), ("ça", False),
    ("a*", False), ("emoji😀", False), ("quote\"", False), ("back\\slash", False),
])
def test_channel_pattern_agrees_with_the_builder(document, name, valid):
    pattern = document["components"]["schemas"]["ChannelName"]["pattern"]
    assert bool(re.search(pattern, name)) is valid
    try:
        tokens.check_channel(name)
        accepted = True
    except tokens.TokenError:
        accepted = False
    assert accepted is valid


def test_limits_agree_with_the_code(document):
    schemas = document["components"]["schemas"]
    assert schemas["Lifetime"]["maximum"] == schemas["GrantedLifetime"]["maximum"] == tokens.MAX_EXPIRE
    assert schemas["NumericUid"]["oneOf"][0]["maximum"] == tokens.MAX_UID
    assert set(schemas["RoleName"]["enum"]) == set(params.ROLES)



def _samples():
    """Every printable ASCII character and a few others, alone and in the lengths that matter."""
    chars = [chr(c) for c in range(32, 127)] + ["\n", "\x00", "é", "中"]
    for ch in chars:
        yield ch
        yield "a" + ch
        yield ch + "a"
    for n in (1, 2, 62, 63, 64, 65, 254, 255, 256):
        yield "a" * n
    yield from ("0", "null", " a", "Bob", "*", "")


@pytest.mark.parametrize("schema, check", [
    ("ChannelName", tokens.check_channel), ("RtcAccount", tokens.check_account),
    ("RtmUser", tokens.check_rtm_user), ("ChatUser", tokens.check_chat_user),
])
def test_identifier_patterns_agree_with_the_code(document, schema, check):
    # ECMA-262's $ is the end of the text; Python's also matches before a final newline
    pattern = re.compile(re.sub(r"\$(?=\)?$)", r"\\Z", document["components"]["schemas"][schema]["pattern"]))
    for sample in _samples():
        try:
            check(sample)
            accepted = True
        except tokens.TokenError:
            accepted = False
        assert bool(pattern.search(sample)) == accepted, (schema, sample)


def test_served_as_json_without_auth(client, document):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_json() == document


@pytest.mark.parametrize("text, error", [("- just a list\n", ValueError), (None, FileNotFoundError)])
def test_a_broken_document_stops_start_up(env, tmp_path, monkeypatch, text, error):
    bad = tmp_path / "openapi.yaml"
    if text is not None:
        bad.write_text(text)
    monkeypatch.setattr(docs, "OPENAPI_YAML", bad)
    with pytest.raises(error):
        create_app({**env, "TESTING": True})
