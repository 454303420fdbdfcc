"""auth.jwt with JWT_JWKS_URL: a real JWKS served over HTTP on 127.0.0.1 by tests.jwtutil.

Times are scaled down (cooldowns and timeouts of a fraction of a second) to keep this fast;
each test says which durations it relies on. A test that takes the ``clock`` fixture (what
auth.jwks and auth.jwt read as the time) sees a cache lifetime or a cooldown pass only when it
advances the clock, never because the machine was busy between two steps; a fetch that hangs or
is slow takes real time.
"""
from __future__ import annotations

import json
import threading
import math
import time
import types
import uuid

import pytest

import auth.jwks
import auth.jwt
from auth.jwt import JWTVerifier
from exceptions import ServiceUnavailable, Unauthorized
from tests.credentials import AUDIENCE, ISSUER, default_claims, make_jwt, sign_raw
from tests.jwtutil import JWKSServer, ec_key, make_settings, public_jwk, public_pem, rsa_key

COOLDOWN = 0.3
TIMEOUT = 0.5
FAMILIES = {"RS256": rsa_key, "ES256": ec_key}


class Clock:
    """The real clocks as they read when the test began, plus however far it has advanced them:
    they stand still otherwise, however long the test's steps take."""

    def __init__(self) -> None:
        self._time, self._monotonic = time.time(), time.monotonic()

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """At least ``seconds`` later. ``(t + 0.3) - t`` can come out a rounding step under 0.3
        (it depends on t: on a machine up for 750 s it does), which would make "the cooldown
        has passed" false; one step up for each reading makes the difference at least it."""
        seconds = max(0.0, seconds)
        self._time = math.nextafter(self._time + seconds, math.inf)
        self._monotonic = math.nextafter(self._monotonic + seconds, math.inf)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The time as the JWKS cache and the verified-token cache see it."""
    clock = Clock()
    seen = types.SimpleNamespace(time=clock.time, monotonic=clock.monotonic)
    monkeypatch.setattr(auth.jwks, "time", seen)
    monkeypatch.setattr(auth.jwt, "time", seen)
    return clock


@pytest.fixture(params=list(FAMILIES))
def family(request):
    """(alg, key(n)): every JWKS behaviour is checked with RSA and with EC keys."""
    return request.param, FAMILIES[request.param]


def verifier_for(server: JWKSServer, alg: str = "RS256", **fields) -> JWTVerifier:
    settings = {
        "jwt_jwks_url": server.url, "jwt_algorithms": (alg,), "jwt_issuer": (ISSUER,),
        "jwt_audience": (AUDIENCE,), "jwt_jwks_cooldown": COOLDOWN, "jwt_jwks_cache_ttl": 60.0,
        "jwt_jwks_timeout": TIMEOUT, "jwt_jwks_stale_ttl": 60.0, **fields,
    }
    return JWTVerifier.from_settings(make_settings(**settings))


def token(key, alg: str, kid: str | None, **headers) -> str:
    """A fresh token (a new jti each time, so the verified-token cache never answers it)."""
    if kid is not None:
        headers["kid"] = kid
    claims = default_claims(iss=ISSUER, aud=AUDIENCE, jti=uuid.uuid4().hex)
    return make_jwt(claims, key=key, algorithm=alg, headers=headers)


def refused(verifier: JWTVerifier, tok: str) -> str:
    with pytest.raises(Unauthorized) as e:
        verifier.verify(tok)
    assert e.value.status == 401 and e.value.message and tok not in e.value.message
    return e.value.message


def unavailable(verifier: JWTVerifier, tok: str) -> ServiceUnavailable:
    with pytest.raises(ServiceUnavailable) as e:
        verifier.verify(tok)
    assert e.value.status == 503 and e.value.message
    assert int(e.value.headers["Retry-After"]) >= 1
    return e.value


def test_round_trip_fetches_once(family):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "a"), public_jwk(key(1), "b")) as server:
        verifier = verifier_for(server, alg)
        assert verifier.verify(token(key(0), alg, "a")).subject == "user-1"
        assert verifier.verify(token(key(1), alg, "b")).issuer == ISSUER
        assert "signature is invalid" in refused(verifier, token(key(1), alg, "a"))
        assert server.hits == 1


def test_token_without_kid(family):
    alg, key = family
    with JWKSServer(public_jwk(key(0))) as server:
        assert verifier_for(server, alg).verify(token(key(0), alg, None)).subject == "user-1"
        server.serve(public_jwk(key(0), "a"), public_jwk(key(1), "b"))
        assert "several keys" in refused(verifier_for(server, alg), token(key(0), alg, None))


def test_unknown_kid_refetches_once_then_cools_down(family, clock):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "a")) as server:
        verifier = verifier_for(server, alg)
        verifier.verify(token(key(0), alg, "a"))
        clock.advance(COOLDOWN)
        assert "not in the JWKS" in refused(verifier, token(key(0), alg, "nope"))
        assert server.hits == 2
        assert "not in the JWKS" in refused(verifier, token(key(0), alg, "nope"))
        assert server.hits == 2


def test_cooldown_holds_against_a_flood_of_random_kids(family, clock):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "a")) as server:
        verifier = verifier_for(server, alg)  # COOLDOWN, on a clock that stands still
        verifier.verify(token(key(0), alg, "a"))
        for _ in range(25):
            refused(verifier, token(key(0), alg, uuid.uuid4().hex))
        threads = [threading.Thread(target=refused, args=(verifier, token(key(0), alg, uuid.uuid4().hex)))
                   for _ in range(25)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.hits == 1  # the initial fetch started the cooldown
        assert verifier.verify(token(key(0), alg, "a")).subject == "user-1"


def test_rotation_new_key_added_then_old_key_removed(family, clock):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "old")) as server:
        verifier = verifier_for(server, alg, jwt_jwks_cache_ttl=0.6)
        old = token(key(0), alg, "old")
        assert verifier.verify(old).subject == "user-1"

        server.serve(public_jwk(key(0), "old"), public_jwk(key(1), "new"))
        assert "not in the JWKS" in refused(verifier, token(key(1), alg, "new"))  # cooling down
        clock.advance(COOLDOWN)
        assert verifier.verify(token(key(1), alg, "new")).subject == "user-1"  # first use after
        assert server.hits == 2
        assert verifier.verify(old).subject == "user-1"

        server.serve(public_jwk(key(1), "new"))
        clock.advance(0.6)  # the cache lifetime: the next request refetches
        assert verifier.verify(token(key(1), alg, "new")).subject == "user-1"
        assert server.hits == 3
        assert "not in the JWKS" in refused(verifier, old)  # even though it was verified before
        assert "not in the JWKS" in refused(verifier, token(key(0), alg, "old"))


def test_cached_token_does_not_outlive_its_removed_key(family, clock):
    """JWT_JWKS_CACHE_TTL=1, and no other token comes: once the key left the JWKS and the key
    set is due, verify() does not answer the token from the cache."""
    alg, key = family
    with JWKSServer(public_jwk(key(0), "old"), public_jwk(key(1), "new")) as server:
        verifier = verifier_for(server, alg, jwt_jwks_cache_ttl=1.0)
        old = token(key(0), alg, "old")
        first = verifier.verify(old)
        assert verifier.verify(old) is first and server.hits == 1  # from the cache

        server.serve(public_jwk(key(1), "new"))
        clock.advance(1.0)
        assert server.hits == 1
        unknown = refused(verifier, token(key(0), alg, "old"))  # never seen: an unknown key
        assert refused(verifier, old) == unknown == "token key id (kid) is not in the JWKS"
        assert server.hits == 2


def test_cached_token_fails_when_its_kid_names_another_key(family, clock):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "a")) as server:
        verifier = verifier_for(server, alg, jwt_jwks_cache_ttl=0.4)
        tok = token(key(0), alg, "a")
        verifier.verify(tok)
        server.serve(public_jwk(key(1), "a"))  # same kid, another key
        clock.advance(0.4)
        assert "signature is invalid" in refused(verifier, tok)
        assert "signature is invalid" in refused(verifier, tok)  # and not cached since


def test_cached_token_is_answered_while_fresh_and_checked_again_when_due(family, clock):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "a")) as server:
        verifier = verifier_for(server, alg, jwt_jwks_cache_ttl=0.4)
        tok = token(key(0), alg, "a")
        first = verifier.verify(tok)
        for _ in range(100):
            assert verifier.verify(tok) is first
        assert server.hits == 1

        clock.advance(0.4)
        again = verifier.verify(tok)  # the key set is refetched, the token verified again
        assert again is not first and again.subject == "user-1" and server.hits == 2
        assert verifier.verify(tok) is again and server.hits == 2


def test_cached_token_is_not_answered_past_the_stale_ttl(clock):
    server = JWKSServer(public_jwk(rsa_key(0), "a")).start()
    verifier = verifier_for(server, jwt_jwks_cache_ttl=0.2, jwt_jwks_stale_ttl=0.6,
                            jwt_jwks_cooldown=0.1)
    tok = token(rsa_key(0), "RS256", "a")
    verifier.verify(tok)
    fetched = clock.monotonic()
    server.stop()
    clock.advance(0.25)
    assert verifier.verify(tok).subject == "user-1"  # stale but known, as for any token
    clock.advance(fetched + 0.65 - clock.monotonic())
    unavailable(verifier, tok)


def test_endpoint_down_with_warm_cache_keeps_known_keys_for_the_stale_ttl(family, clock):
    alg, key = family
    server = JWKSServer(public_jwk(key(0), "a")).start()
    verifier = verifier_for(server, alg, jwt_jwks_cache_ttl=0.2, jwt_jwks_stale_ttl=0.6,
                            jwt_jwks_cooldown=0.1)
    verifier.verify(token(key(0), alg, "a"))
    fetched = clock.monotonic()
    server.stop()
    clock.advance(0.25)
    assert verifier.verify(token(key(0), alg, "a")).subject == "user-1"  # stale but known
    assert "not in the JWKS" in refused(verifier, token(key(0), alg, "b"))  # a 401, not a 503
    clock.advance(fetched + 0.65 - clock.monotonic())
    unavailable(verifier, token(key(0), alg, "a"))  # past the stale ttl


def test_hanging_endpoint_delays_only_the_refreshing_request(clock):
    """The other nine are answered from the stale keys while the refresh still hangs: with a
    fetch timeout no busy machine outlasts, the test, not the timeout, ends the hang. (That a
    hanging fetch gives up after the timeout is the cold-cache test's to show.)"""
    with JWKSServer(public_jwk(rsa_key(0), "a")) as server:
        verifier = verifier_for(server, jwt_jwks_cache_ttl=0.2, jwt_jwks_cooldown=0.1,
                                jwt_jwks_timeout=60.0)
        verifier.verify(token(rsa_key(0), "RS256", "a"))
        server.hang = True
        clock.advance(0.25)
        results: list[object] = []
        tokens = [token(rsa_key(0), "RS256", "a") for _ in range(10)]
        threads = [threading.Thread(target=lambda t=t: results.append(verifier.verify(t).subject))
                   for t in tokens]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20  # the server holds a hanging request 30 s
        while len(results) < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert results == ["user-1"] * 9 and server.hits == 2  # the tenth is still fetching
        server.hang = False  # the fetch ends without an answer: the stale keys answer it too
        for t in threads:
            t.join()
        assert results == ["user-1"] * 10
        assert server.hits == 2


def test_cold_cache_and_endpoint_refusing_is_a_quick_503():
    """A refused connection is an outage at once, not after the fetch timeout (a long one here,
    so that a busy machine cannot be mistaken for waiting it out)."""
    server = JWKSServer(public_jwk(rsa_key(0), "a"))
    server.stop()
    timeout = 20.0
    verifier = verifier_for(server, jwt_jwks_timeout=timeout)
    tok = token(rsa_key(0), "RS256", "a")
    started = time.monotonic()
    error = unavailable(verifier, tok)
    assert time.monotonic() - started < timeout / 4
    assert "JWKS" in error.message


def test_cold_cache_and_endpoint_hanging_is_a_503_within_the_timeout(clock):
    with JWKSServer(public_jwk(rsa_key(0), "a")) as server:
        server.hang = True
        verifier = verifier_for(server)
        outcomes: list[object] = []

        def attempt() -> None:
            started = time.monotonic()
            try:
                verifier.verify(token(rsa_key(0), "RS256", "a"))
            except ServiceUnavailable:
                outcomes.append(time.monotonic() - started)

        threads = [threading.Thread(target=attempt) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each waited about TIMEOUT (on the endpoint, or on the one fetching): the slack is for a
        # busy machine, and far short of the 30 s the server would hold a request.
        assert len(outcomes) == 10 and max(outcomes) < TIMEOUT + 5
        assert server.hits == 1  # one fetch for ten cold requests
        tok = token(rsa_key(0), "RS256", "a")
        started = time.monotonic()
        unavailable(verifier, tok)  # within the cooldown (the clock stands still): no fetch
        assert time.monotonic() - started < TIMEOUT and server.hits == 1  # nor a wait on one
        server.hang = False
        clock.advance(COOLDOWN)
        assert verifier.verify(token(rsa_key(0), "RS256", "a")).subject == "user-1"


@pytest.mark.parametrize("cooldown", [0.0, COOLDOWN])
def test_concurrent_cold_requests_make_one_fetch(family, cooldown):
    alg, key = family
    with JWKSServer(public_jwk(key(0), "a"), delay=0.2) as server:
        # The others wait for the one fetching up to the fetch timeout: one no busy machine outlasts.
        verifier = verifier_for(server, alg, jwt_jwks_cooldown=cooldown, jwt_jwks_timeout=30.0)
        tokens = [token(key(0), alg, "a") for _ in range(20)]
        subjects: list[str] = []
        threads = [threading.Thread(target=lambda t=t: subjects.append(verifier.verify(t).subject))
                   for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert subjects == ["user-1"] * 20
        assert server.hits == 1


GARBAGE = [
    ("not JSON", b"<html>login</html>", 200),
    ("invalid UTF-8", b"\xff\xfe\x00", 200),
    ("a JSON list", b"[]", 200),
    ("no keys", b"{}", 200),
    ("keys not a list", b'{"keys": "nope"}', 200),
    ("empty keys", b'{"keys": []}', 200),
    ("keys not objects", b'{"keys": [1, "x", null, []]}', 200),
    ("a symmetric key", json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "a"}]}).encode(), 200),
    ("RSA key without n", b'{"keys": [{"kty": "RSA", "e": "AQAB", "kid": "a"}]}', 200),
    ("RSA key with garbage n", b'{"keys": [{"kty": "RSA", "e": "AQAB", "n": 7, "kid": "a"}]}', 200),
    ("EC key off the curve", b'{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "a"}]}', 200),
    ("curve a list", b'{"keys": [{"kty": "EC", "crv": ["P-256"], "kid": "a"}]}', 200),
    ("encryption key", json.dumps({"keys": [public_jwk(rsa_key(0), "a", use="enc")]}).encode(), 200),
    ("private key", json.dumps({"keys": [{**public_jwk(rsa_key(0), "a"), "d": "AQAB"}]}).encode(), 200),
    ("wrong family", json.dumps({"keys": [public_jwk(ec_key(0), "a")]}).encode(), 200),
    ("deeply nested", b'{"keys": ' + b"[" * 5000 + b"]" * 5000 + b"}", 200),
    ("HTTP 500", json.dumps({"keys": [public_jwk(rsa_key(0), "a")]}).encode(), 500),
    ("HTTP 404", b"not found", 404),
    ("redirect", b"", 302),
]


@pytest.mark.parametrize("body, status", [g[1:] for g in GARBAGE], ids=[g[0] for g in GARBAGE])
def test_garbage_is_an_outage(body, status, clock):
    with JWKSServer() as server:
        server.serve_raw(body, status)
        unavailable(verifier_for(server), token(rsa_key(0), "RS256", "a"))  # cold

        server.serve(public_jwk(rsa_key(0), "a"))
        verifier = verifier_for(server, jwt_jwks_cache_ttl=0.1, jwt_jwks_cooldown=0.05)
        verifier.verify(token(rsa_key(0), "RS256", "a"))
        server.serve_raw(body, status)
        clock.advance(0.12)
        hits = server.hits
        assert verifier.verify(token(rsa_key(0), "RS256", "a")).subject == "user-1"  # warm
        assert server.hits == hits + 1


def test_only_keys_of_the_configured_family_are_usable(clock):  # the cooldown never passes
    jwks = [
        public_jwk(ec_key(0), "ec"),
        public_jwk(rsa_key(0, 1024), "small"),
        public_jwk(rsa_key(1), "rs384", alg="RS384"),
        public_jwk(rsa_key(2), "ps256", alg="PS256"),
        public_jwk(rsa_key(3), "any"),
    ]
    with JWKSServer(*jwks) as server:
        verifier = verifier_for(server, jwt_algorithms=("RS256", "PS256"))
        assert "not in the JWKS" in refused(verifier, token(rsa_key(0), "RS256", "ec"))
        small = sign_raw({"alg": "RS256", "kid": "small"}, default_claims(iss=ISSUER, aud=AUDIENCE),
                         key=rsa_key(0, 1024))  # pyjwt warns when it signs with a small key
        assert "not in the JWKS" in refused(verifier, small)
        assert "not in the JWKS" in refused(verifier, token(rsa_key(1), "RS256", "rs384"))
        assert "does not fit its key" in refused(verifier, token(rsa_key(2), "RS256", "ps256"))
        assert verifier.verify(token(rsa_key(2), "PS256", "ps256")).subject == "user-1"
        assert verifier.verify(token(rsa_key(3), "RS256", "any")).subject == "user-1"
        assert verifier.verify(token(rsa_key(3), "PS256", "any")).subject == "user-1"
        assert "algorithm is not accepted" in refused(verifier, token(ec_key(0), "ES256", "ec"))
        assert server.hits == 1


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_key_headers_never_cause_a_fetch(header, clock):  # the cooldown never passes
    with JWKSServer(public_jwk(rsa_key(0), "a")) as trusted, \
            JWKSServer(public_jwk(rsa_key(1), "a"), public_jwk(rsa_key(1), "evil")) as attacker:
        verifier = verifier_for(trusted)
        value = public_jwk(rsa_key(1), "evil") if header == "jwk" else attacker.url
        for kid in ("a", "evil"):
            assert refused(verifier, token(rsa_key(1), "RS256", kid, **{header: value}))
        assert verifier.verify(token(rsa_key(0), "RS256", "a", **{header: value})).subject == "user-1"
        time.sleep(0.05)
        assert attacker.hits == 0 and trusted.hits == 1


def test_algorithm_confusion_never_reaches_the_jwks():
    with JWKSServer(public_jwk(rsa_key(0), "a")) as server:
        verifier = verifier_for(server)
        forged = sign_raw({"alg": "HS256", "kid": "a"}, default_claims(iss=ISSUER, aud=AUDIENCE),
                          key=public_pem(rsa_key(0)).encode())
        assert "algorithm is not accepted" in refused(verifier, forged)
        assert server.hits == 0
