"""CORS_ALLOW_ORIGIN: each configured origin matches exactly one origin, or for
``scheme://*.domain[:port]`` the subdomains of domain on that scheme and port, and nothing else;
what is not an origin refuses to start. Checked on a simple request and on a preflight."""
from __future__ import annotations

import pytest

from app import create_app
from config.names import ConfigError

WILDCARD = "https://*.example.com"


def allowed_origin(client, origin: str) -> tuple[str | None, str | None]:
    """The Access-Control-Allow-Origin a simple GET and a preflight from ``origin`` get."""
    simple = client.get("/ping", headers={"Origin": origin})
    preflight = client.options("/getToken", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert simple.status_code == preflight.status_code == 200
    assert "Origin" in simple.headers["Vary"] and "Origin" in preflight.headers["Vary"]
    return (simple.headers.get("Access-Control-Allow-Origin"),
            preflight.headers.get("Access-Control-Allow-Origin"))


def client_for(env, origins: str):
    env["CORS_ALLOW_ORIGIN"] = origins
    return create_app(env).test_client()


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://a.b.example.com",
                                    "https://APP.Example.COM", "https://xn--bcher-kva.example.com"])
def test_a_subdomain_wildcard_allows_subdomains(env, origin):
    assert allowed_origin(client_for(env, WILDCARD), origin) == (origin, origin)


@pytest.mark.parametrize("origin", [
    "https://xexample.com.attacker.net",  # what flask-cors' own start-anchored regex let through
    "https://example.com",  # the domain itself is not one of its subdomains
    "http://app.example.com",
    "https://app.example.com:8443",
    "https://app.example.com:443",  # browsers never send a default port
    "https://app.example.com.evil.net",
    "https://evilexample.com",
    "https://app-example.com",
    "https://.example.com",
    "https://app..example.com",
    "https://app.example.com/",
    "https://app_x.example.com",
    "https://\u212a.example.com",  # KELVIN SIGN, which Unicode case folding makes a k
    "null",
])
def test_a_subdomain_wildcard_allows_nothing_else(env, origin):
    assert allowed_origin(client_for(env, WILDCARD), origin) == (None, None)


def test_a_wildcard_with_a_port_allows_that_port_only(env):
    client = client_for(env, "http://*.example.com:8080")
    assert allowed_origin(client, "http://app.example.com:8080") == ("http://app.example.com:8080",) * 2
    for other in ("http://app.example.com", "http://app.example.com:80", "http://app.example.com:18080",
                  "http://app.example.com:8080x"):
        assert allowed_origin(client, other) == (None, None), other


@pytest.mark.parametrize("configured, origin, allowed", [
    ("https://app.example.com", "https://app.example.com", True),
    ("https://app.example.com", "https://appxexample.com", False),  # a '.' is a dot, not any character
    ("https://app.example.com", "https://app.examplexcom", False),
    ("https://app.example.com", "https://app.example.co", False),
    ("https://app.example.com", "https://app.example.com.evil.net", False),
    ("https://app.example.com", "https://x.app.example.com", False),
    ("HTTPS://App.Example.com", "https://app.example.com", True),
    ("https://kit.example.com", "https://\u212ait.example.com", False),  # KELVIN SIGN: not a k
    ("https://app.example.com:443", "https://app.example.com", True),  # the default port, as browsers send it
    ("http://localhost:3000", "http://localhost:3000", True),
    ("http://localhost:3000", "http://localhost:30001", False),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080", True),
    ("http://127.0.0.1:8080", "http://127x0.0.1:8080", False),
    ("http://[::1]:3000", "http://[::1]:3000", True),
    ("http://[::1]:3000", "http://1:3000", False),  # '[::1]' is no character class
    ("http://[::1]:3000", "http://::1:3000", False),
])
def test_an_exact_origin_allows_itself_only(env, configured, origin, allowed):
    expected = (origin, origin) if allowed else (None, None)
    assert allowed_origin(client_for(env, configured), origin) == expected


def test_an_allowlist_is_not_sent_to_a_request_without_origin(env):
    client = client_for(env, "https://app.example.com, https://*.example.org")
    assert "Access-Control-Allow-Origin" not in client.get("/ping").headers


def test_star_allows_every_origin(env):
    assert allowed_origin(client_for(env, "*"), "https://anything.example.net") == ("*", "*")


@pytest.mark.parametrize("value", [
    "not an origin",
    "app.example.com",
    "ftp://app.example.com",
    "*://app.example.com",
    "https://",
    "https://app.example.com/",
    "https://app.example.com/path",
    "https://app.example.com?x=1",
    "https://app.example.com#top",
    "https://user@app.example.com",
    "https://app.example.com:",
    "https://app.example.com:0",
    "https://app.example.com:65536",
    "https://app.example.com:https",
    "https://*",
    "https://*.com",
    "https://*example.com",
    "https://app.*.example.com",
    "https://*.*.example.com",
    "https://*.example.com/",
    "*.example.com",
    "https://.example.com",
    "https://app..example.com",
    "https://app.example.com.",
    "https://-app.example.com",
    "https://app_x.example.com",
    "https://app.example.com$",
    "https://(app|www).example.com",
    "https://[a-z]+.example.com",
    "https://bücher.example",
    "https://127.1",
    "http://[::1",
    "http://[::1]x",
    "http://[not-an-address]",
    "http://[fe80::1%eth0]:3000",
])
def test_what_is_not_an_origin_refuses_to_start_naming_the_value(env, value):
    env["CORS_ALLOW_ORIGIN"] = f"https://good.example.com, {value}"
    with pytest.raises(ConfigError) as refused:
        create_app(env)
    assert str(refused.value).startswith(f"CORS_ALLOW_ORIGIN: {value!r} ")


def test_star_must_be_the_whole_setting(env):
    env["CORS_ALLOW_ORIGIN"] = "https://app.example.com, *"
    with pytest.raises(ConfigError, match=r"CORS_ALLOW_ORIGIN: '\*' .* got 'https://app.example.com, \*'"):
        create_app(env)
