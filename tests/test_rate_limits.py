"""Rate limits in one process: per caller on token routes, per client IP on every request.

The multi-worker, multi-machine and behind-nginx cases run the real processes in
test_rate_limits_integration.py.
"""
from __future__ import annotations

import logging
import socket
import time

import pytest

from api.extension import token_server
from api.limits import address_key
from app import create_app
from config.names import ConfigError
from tests.credentials import ISSUER
from tools.procs import free_port

PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization"}
OTHER_ISSUER = "https://other-idp.test/"


@pytest.fixture
def limited(env):
    """A test client on the test configuration with some settings changed."""
    def build(**settings):
        return create_app({**env, **settings}).test_client()
    return build


@pytest.fixture
def app_log():
    """The records the service's own logger ("agora_token_server", which does not propagate) emits."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("agora_token_server")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def statuses(client, n: int, path: str = "/rtm/bob/", **kw) -> list[int]:
    return [client.get(path, **kw).status_code for _ in range(n)]


def test_one_bucket_per_caller_across_every_token_route(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="5/minute")
    paths = ("/rtm/bob/", "/chat/app/", "/rtc/c/publisher/uid/1/", "/access_token?channel=c&uid=1")
    got = [client.get(path, headers=bearer()).status_code for path in paths]
    got.append(client.post("/getToken", json={"tokenType": "rtm", "uid": "bob"}, headers=bearer()).status_code)
    assert got == [200] * 5
    assert client.post("/generate-app-token", json={}, headers=bearer()).status_code == 429
    assert client.get("/rtm/bob/", headers=bearer("someone-else")).status_code == 200


def test_429_is_json_with_retry_after_rate_limit_and_cors_headers(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="1/minute")
    assert client.get("/rtm/bob/", headers=bearer()).headers["X-RateLimit-Remaining"] == "0"
    r = client.get("/rtm/bob/", headers={**bearer(), "Origin": "https://app.example.com"})
    assert r.status_code == 429
    assert r.json == {"error": "too many requests", "code": "429"}
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert (r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"]) == ("1", "0")
    assert time.time() < int(r.headers["X-RateLimit-Reset"]) <= time.time() + 61
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://app.example.com")
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed


def test_callers_are_keyed_by_issuer_and_subject(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="2/minute", JWT_ISSUER=f"{ISSUER},{OTHER_ISSUER}")
    assert statuses(client, 3, headers=bearer("alice")) == [200, 200, 429]
    assert statuses(client, 3, headers=bearer("alice", iss=OTHER_ISSUER)) == [200, 200, 429]
    assert statuses(client, 2, headers=bearer("bob")) == [200, 200]


def test_a_caller_is_one_bucket_whatever_its_issuer_and_subject_hold(limited, bearer):
    """Issuer "…/|x" with subject "y", and issuer "…/" with subject "x|y": joined with "|", both
    were one bucket."""
    client = limited(RATE_LIMIT_PER_USER="2/minute", JWT_ISSUER=f"{ISSUER}|x,{ISSUER}")
    assert statuses(client, 3, headers=bearer("y", iss=f"{ISSUER}|x")) == [200, 200, 429]
    assert statuses(client, 2, headers=bearer("x|y")) == [200, 200]


def test_unauthenticated_requests_never_touch_a_callers_bucket(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="2/minute")
    expired, forged = bearer("alice", exp=int(time.time()) - 600), bearer("alice", key="x" * 40)
    assert statuses(client, 3, headers=expired) + statuses(client, 3, headers=forged) == [401] * 6
    assert statuses(client, 3, headers=bearer("alice")) == [200, 200, 429]


def test_order_ip_then_authentication_then_caller_then_parameters(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="2/minute", RATE_LIMIT_PER_IP="5/minute")
    assert client.get("/rtc/c/owner/uid/1/").status_code == 401  # no JWT: before the bad role
    caller = bearer("carol", groups=())
    assert client.get("/rtc/c/owner/uid/1/", headers=caller).status_code == 400  # counts for carol
    assert client.get("/rtc/private/publisher/uid/1/", headers=caller).status_code == 403  # and so does a 403
    assert client.get("/rtc/c/owner/uid/1/", headers=caller).status_code == 429  # carol's limit first
    r = client.get("/rtm/bob/", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.headers["X-RateLimit-Limit"] == "5"
    r = client.get("/rtm/bob/", headers=bearer("dave"))  # the address's 6th request: before authentication
    assert r.status_code == 429 and r.headers["X-RateLimit-Limit"] == "5"


def test_ping_healthz_and_preflights_are_exempt_from_the_per_user_limit_only(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="1/minute", RATE_LIMIT_PER_IP="6/minute")
    assert statuses(client, 2, headers=bearer()) == [200, 429]
    assert client.options("/rtm/bob/", headers={**PREFLIGHT, **bearer()}).status_code == 200
    assert client.get("/ping", headers=bearer()).status_code == 200
    assert client.get("/healthz", headers=bearer()).status_code == 200
    assert client.get("/nope").status_code == 404
    assert [client.get(p).status_code for p in ("/ping", "/healthz", "/nope")] == [429] * 3
    assert client.options("/rtm/bob/", headers=PREFLIGHT).status_code == 429


def test_a_flood_of_bad_jwts_is_throttled_per_ip(limited):
    client = limited(RATE_LIMIT_PER_IP="4/minute")
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert statuses(client, 6, headers=bad) == [401] * 4 + [429] * 2
    assert client.open("/rtm/bob/", method="DELETE").status_code == 429  # a 405 counts too


def test_client_addresses_have_separate_buckets(limited):
    client = limited(RATE_LIMIT_PER_IP="2/minute")

    def ping(address):
        return client.get("/ping", environ_base={"REMOTE_ADDR": address}).status_code
    assert [ping("192.0.2.1") for _ in range(3)] == [200, 200, 429]
    assert [ping("192.0.2.2") for _ in range(2)] == [200, 200]


@pytest.mark.parametrize("trusted_proxies, expected", [("0", [200, 200, 429, 429]), ("1", [200] * 4)])
def test_x_forwarded_for_counts_only_from_trusted_proxies(limited, trusted_proxies, expected):
    client = limited(RATE_LIMIT_PER_IP="2/minute", TRUSTED_PROXIES=trusted_proxies)
    got = [client.get("/ping", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(4)]
    assert got == expected


@pytest.mark.parametrize("spelling", ["203.0.113.9:{port}", "[2001:db8::1]:{port}"])
def test_a_trusted_forwarded_address_counts_without_its_port(limited, spelling):
    """Some load balancers append the client's port: one bucket per connection, unless dropped."""
    client = limited(RATE_LIMIT_PER_IP="3/minute", TRUSTED_PROXIES="1")
    got = [client.get("/ping", headers={"X-Forwarded-For": spelling.format(port=4711 + i)}).status_code
           for i in range(25)]
    assert got == [200] * 3 + [429] * 22


def test_forwarded_values_that_are_no_address_share_one_bucket(limited):
    client = limited(RATE_LIMIT_PER_IP="3/minute", TRUSTED_PROXIES="1")
    spellings = ["unknown", "_hidden", "203.0.113.9:http", "[203.0.113.9]:80", "2001:db8::1]:80", "::1:",
                 "203.0.113.09", "not-an-address", "[::1]"]
    got = [client.get("/ping", headers={"X-Forwarded-For": s}).status_code for s in spellings]
    assert got == [200] * 3 + [429] * (len(spellings) - 3)
    assert client.get("/ping", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200  # an address's own


@pytest.mark.parametrize("address, key", [
    ("203.0.113.9", "203.0.113.9"),
    ("203.0.113.9:4711", "203.0.113.9"),
    ("[2001:db8::1]:4711", "2001:db8::/64"),
    ("2001:db8::1", "2001:db8::/64"),
    ("[::ffff:192.0.2.1]:80", "192.0.2.1"),
    ("fe80::1%eth0", "fe80::/64"),
    ("203.0.113.9:", "not-an-address"),
    ("203.0.113.9:٣", "not-an-address"),  # a digit, not an ASCII one
    ("[203.0.113.9]:80", "not-an-address"),
    ("2001:db8::1]:80", "not-an-address"),
])
def test_address_keys(address, key):
    assert address_key(address, 64) == key


def test_several_limits_separated_by_semicolons(limited, bearer):
    client = limited(RATE_LIMIT_PER_USER="3/minute; 2/hour")
    got = [client.get("/rtm/bob/", headers=bearer()) for _ in range(3)]
    assert [r.status_code for r in got] == [200, 200, 429]
    assert got[2].headers["X-RateLimit-Limit"] == "2"  # the limit that was exceeded


@pytest.mark.parametrize("settings, expected, headers", [
    ({"RATELIMIT_ENABLED": "false"}, [200, 200, 200], False),
    ({"RATELIMIT_STRATEGY": "moving-window"}, [200, 429, 429], True),
    ({"RATELIMIT_HEADERS_ENABLED": "false"}, [200, 429, 429], False),
])
def test_rate_limiter_settings(limited, bearer, settings, expected, headers):
    client = limited(RATE_LIMIT_PER_USER="1/minute", **settings)
    assert statuses(client, 3, headers=bearer()) == expected
    assert ("X-RateLimit-Limit" in client.get("/rtm/bob/", headers=bearer()).headers) == headers


def test_healthz_reports_the_storage(client):
    assert client.get("/healthz").json["rate_limit_storage"] == "ok"


def test_unreachable_redis_keeps_serving_under_in_memory_limits(limited, bearer, app_log):
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    client = limited(RATE_LIMIT_PER_USER="3/minute", RATELIMIT_STORAGE_URI=nothing_there)
    started = time.monotonic()
    assert statuses(client, 5, headers=bearer()) == [200, 200, 200, 429, 429]
    assert time.monotonic() - started < 4  # a refused connection costs no socket timeout
    assert client.get("/healthz").json["rate_limit_storage"] == "degraded"
    warned = [r for r in app_log if "storage unreachable" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


def test_a_hung_redis_costs_a_few_socket_timeouts_at_most(limited, bearer):
    with socket.socket() as hung:  # accepts connections (the kernel does) and never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        client = limited(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{hung.getsockname()[1]}/0")
        waits = []
        for _ in range(4):
            started = time.monotonic()
            assert client.get("/rtm/bob/", headers=bearer()).status_code == 200
            waits.append(time.monotonic() - started)
    # the first request waits one socket timeout (0.3 s) and falls back to memory; the next ones
    # leave Redis alone until the next probe, a second later at the earliest (one more probe
    # if the machine is slow enough); redis-py's own default would have been 5 s each
    assert max(waits) < 3 and sorted(waits)[1] < 0.25, waits


def test_storage_options_default_to_short_timeouts(env):
    env.update(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
               RATELIMIT_STORAGE_OPTIONS='{"socket_timeout": 0.1}')
    app = create_app(env)
    assert "RATELIMIT_STORAGE_OPTIONS" not in app.config  # the options may hold a password
    storage = token_server(app).limiter.storage.backend  # limits' RedisStorage, in api/storages.py's
    pool_options = storage.storage.connection_pool.connection_kwargs  # what redis-py connects with
    assert (pool_options["socket_timeout"], pool_options["socket_connect_timeout"]) == (0.1, 0.3)


@pytest.mark.parametrize("settings, warned", [
    ({"WEB_CONCURRENCY": "4"}, True),
    ({"WEB_CONCURRENCY": "1"}, False),
    ({}, False),
    ({"WEB_CONCURRENCY": "4", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}, False),
])
def test_memory_storage_under_several_workers_is_warned_about(env, app_log, settings, warned):
    create_app({**env, **settings})
    assert any("each worker counts on its own" in r.getMessage() for r in app_log) == warned


@pytest.mark.parametrize("name, value", [
    ("RATE_LIMIT_PER_IP", "10 per fortnight"),
    ("RATELIMIT_HEADERS_ENABLED", "False"),
    ("RATELIMIT_STORAGE_OPTIONS", "[1]"),
    ("RATELIMIT_STORAGE_URI", "nosuch://host"),
    ("RATELIMIT_STRATEGY", "token-bucket"),
    ("RATELIMIT_DEFAULT", "lots"),
    ("RATELIMIT_KEY_FUNC", "mymodule.key"),
    ("WEB_CONCURRENCY", "0"),
])
def test_bad_rate_limit_settings_refuse_to_start(env, name, value):
    env[name] = value
    with pytest.raises(ConfigError, match=name):
        create_app(env)


def test_ipv6_clients_are_counted_per_64_by_default(limited):
    client = limited(RATE_LIMIT_PER_IP="2/minute")

    def ping(address):
        return client.get("/ping", environ_base={"REMOTE_ADDR": address}).status_code
    # one host with a /64 holds 2^64 addresses: they share one bucket
    assert [ping("2001:db8::1"), ping("2001:db8::ffff:2"), ping("2001:db8::3")] == [200, 200, 429]
    assert ping("2001:db8:0:1::1") == 200  # the next /64 is someone else
    # an IPv4 client seen through an IPv6 socket is that IPv4 client
    assert [ping("192.0.2.8"), ping("::ffff:192.0.2.8"), ping("192.0.2.8")] == [200, 200, 429]


@pytest.mark.parametrize("prefix, shared", [("128", False), ("48", True)])
def test_the_ipv6_prefix_is_a_setting(limited, prefix, shared):
    client = limited(RATE_LIMIT_PER_IP="1/minute", RATE_LIMIT_IPV6_PREFIX=prefix)
    first = client.get("/ping", environ_base={"REMOTE_ADDR": "2001:db8:0:0::1"}).status_code
    other = client.get("/ping", environ_base={"REMOTE_ADDR": "2001:db8:0:ff::1"}).status_code
    assert (first, other) == (200, 429 if shared else 200)


@pytest.mark.parametrize("value", ["16", "129", "sixty-four"])
def test_a_bad_ipv6_prefix_refuses_to_start(env, value):
    with pytest.raises(ConfigError, match="RATE_LIMIT_IPV6_PREFIX"):
        create_app({**env, "RATE_LIMIT_IPV6_PREFIX": value})
