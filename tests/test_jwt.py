"""auth.jwt: the bearer header, start-up checks, and verification with a secret or a PEM key."""
from __future__ import annotations

import json
import threading
import time

import pytest
from hypothesis import HealthCheck, event, given, settings as hypothesis_settings, strategies as st

from app import create_app
from auth.jwt import MAX_TOKEN_BYTES, JWTVerifier, bearer_token
from auth.keys import SigningKey
from config.names import ConfigError
from config.environment import effective_environment
from config.settings import settings_from_environment
from exceptions import Unauthorized
from tests.conftest import examples
from tests.credentials import (
    APP_CERTIFICATE, APP_ID, AUDIENCE, ISSUER, JWT_SECRET, default_claims, make_jwt, sign_raw,
)
from tests.jwtutil import (
    CLAIM_VALUES, HUGE, JWKSServer, JSONNumber, certificate_pem, ec_key, ed25519_key, json_text, make_settings,
    private_pem, public_jwk, public_pem, rsa_key,
)

HS256 = {"alg": "HS256", "typ": "JWT"}


def assert_refused(exc: Unauthorized, token: str, fragment: str = "") -> None:
    """A 401 whose message is non-empty, says what is wrong and does not echo the token."""
    assert exc.status == 401
    assert exc.message and exc.message == str(exc)
    assert fragment in exc.message
    # Only runs long enough not to be ordinary words of a message count as echoes.
    if len(token) >= 16 and " " not in token:
        assert token not in exc.message
    assert not any(len(part) >= 16 and " " not in part and part in exc.message for part in token.split("."))


@pytest.fixture(scope="module")
def verifier() -> JWTVerifier:
    return JWTVerifier.from_settings(make_settings(
        jwt_secret=JWT_SECRET, jwt_issuer=(ISSUER,), jwt_audience=(AUDIENCE,), jwt_leeway=5))


def good_claims(**claims):
    return default_claims(**{"iss": ISSUER, "aud": AUDIENCE, **claims})


# --- the Authorization header -------------------------------------------------------------

@pytest.mark.parametrize("value, token", [
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("bearer abc.def.ghi", "abc.def.ghi"),
    ("BEARER  abc.def.ghi ", "abc.def.ghi"),
    ("Bearer a-b_c.d~e+f/g==", "a-b_c.d~e+f/g=="),
])
def test_bearer_token_accepts(value, token):
    assert bearer_token(value) == token


@pytest.mark.parametrize("value, token_given", [
    (None, False),
    ("", False),
    ("   ", False),
    ("Basic dXNlcjpwYXNz", False),
    ("Token abc", False),
    ("Bearerabc.def.ghi", False),
    ("Bearer", True),
    ("Bearer ", True),
    ("Bearer a b", True),
    ("Bearer abc,def", True),
    ("Bearer abc\tdef", True),
    ("Bearer é.é.é", True),
    ("Bearer =abc", True),
])
def test_bearer_token_refuses(value, token_given):
    with pytest.raises(Unauthorized) as e:
        bearer_token(value)
    assert e.value.message
    assert e.value.token_given is token_given


@hypothesis_settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=64))
def test_bearer_token_never_raises_anything_else(value):
    try:
        token = bearer_token(value)
    except Unauthorized as e:
        assert e.message  # noqa: PT017 (raising is one of two right outcomes: not pytest.raises)
    else:
        assert token and " " not in token


# --- start-up -----------------------------------------------------------------------------

@pytest.mark.parametrize("fields, fragment", [
    ({"jwt_secret": "x" * 31}, "JWT_SECRET must be at least 32 bytes"),
    ({"jwt_secret": "x" * 40, "jwt_algorithms": ("HS512",)}, "JWT_SECRET must be at least 64 bytes"),
    ({"jwt_secret": "x" * 40, "jwt_algorithms": ("HS384",)}, "JWT_SECRET must be at least 48 bytes"),
    ({"jwt_secret": public_pem(rsa_key(0))}, "JWT_SECRET looks like a key"),
    ({"jwt_secret": JWT_SECRET, "jwt_algorithms": ("HS256", "RS256")},
     "JWT_ALGORITHMS mixes families: HS256, RS256"),
    ({"jwt_secret": JWT_SECRET, "jwt_algorithms": ("RS256",)}, "RS256 does not fit JWT_SECRET"),
    ({"jwt_secret": JWT_SECRET, "jwt_algorithms": ("NONE",)}, "JWT_ALGORITHMS must not include none"),
    ({"jwt_secret": JWT_SECRET, "jwt_algorithms": ("HS256", "none")}, "must not include none"),
    ({"jwt_secret": JWT_SECRET, "jwt_algorithms": ("HS1024",)}, "unsupported algorithm 'HS1024'"),
    ({"jwt_public_key": public_pem(rsa_key(0)), "jwt_algorithms": ("HS256",)},
     "HS256 does not fit the RSA key in JWT_PUBLIC_KEY"),
    ({"jwt_public_key": public_pem(rsa_key(0)), "jwt_algorithms": ("ES256",)}, "ES256 does not fit"),
    ({"jwt_public_key": public_pem(ec_key(0)), "jwt_algorithms": ("ES384",)},
     "ES384 does not fit the P-256 key"),
    ({"jwt_public_key": public_pem(ec_key(0)), "jwt_algorithms": ("ES256K",)}, "unsupported"),
    ({"jwt_public_key": public_pem(ec_key(0)), "jwt_algorithms": ("EDDSA",)}, "EdDSA does not fit"),
    ({"jwt_public_key": public_pem(ed25519_key(0)), "jwt_algorithms": ("RS256",)},
     "RS256 does not fit the Ed25519 key"),
    ({"jwt_public_key": public_pem(rsa_key(0, 1024))}, "at least 2048"),
    ({"jwt_public_key": private_pem(rsa_key(0))}, "JWT_PUBLIC_KEY holds a private key"),
    ({"jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"},
     "JWT_PUBLIC_KEY is not a PEM"),
    ({"jwt_public_key": "/nonexistent/key.pem"}, "JWT_PUBLIC_KEY is neither a PEM"),
    ({"jwt_jwks_url": "https://idp.example.com/jwks", "jwt_algorithms": ("HS256",)},
     "HS256 does not fit JWT_JWKS_URL"),
    ({"jwt_jwks_url": "https://idp.example.com/jwks", "jwt_algorithms": ("RS256", "ES256")},
     "JWT_ALGORITHMS mixes families: RS256, ES256"),
    ({"jwt_jwks_url": "ftp://idp.example.com/jwks"}, "JWT_JWKS_URL must be an http(s) URL"),
    ({"jwt_jwks_url": "idp.example.com/jwks"}, "JWT_JWKS_URL must be an http(s) URL"),
    ({"jwt_secret": JWT_SECRET, "jwt_public_key": public_pem(rsa_key(0))},
     "set only one of JWT_SECRET, JWT_PUBLIC_KEY"),
    ({"jwt_secret": JWT_SECRET, "jwt_jwks_url": "https://idp.example.com/jwks"},
     "set only one of JWT_SECRET, JWT_JWKS_URL"),
    ({"jwt_secret": JWT_SECRET, "jwt_public_key": public_pem(rsa_key(0)),
      "jwt_jwks_url": "https://idp.example.com/jwks"}, "JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL"),
    ({}, "set one of JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_refuses_to_start(fields, fragment):
    with pytest.raises(ConfigError) as e:
        JWTVerifier.from_settings(make_settings(**fields))
    assert fragment in str(e.value)


@pytest.mark.parametrize("fields, algorithms", [
    ({"jwt_secret": JWT_SECRET}, ("HS256",)),
    ({"jwt_secret": JWT_SECRET, "jwt_algorithms": ("HS512", "HS256")}, ("HS512", "HS256")),
    ({"jwt_public_key": public_pem(rsa_key(0))}, ("RS256",)),
    ({"jwt_public_key": public_pem(rsa_key(0)), "jwt_algorithms": ("RS512", "PS256")},
     ("RS512", "PS256")),
    ({"jwt_public_key": public_pem(ec_key(0, "P-384"))}, ("ES384",)),
    ({"jwt_public_key": public_pem(ec_key(0, "P-521"))}, ("ES512",)),
    ({"jwt_public_key": public_pem(ed25519_key(0))}, ("EdDSA",)),
    ({"jwt_public_key": public_pem(ed25519_key(0)), "jwt_algorithms": ("EDDSA",)}, ("EdDSA",)),
    ({"jwt_jwks_url": "https://idp.example.com/jwks"}, ("RS256",)),
    ({"jwt_jwks_url": "https://idp.example.com/jwks", "jwt_algorithms": ("ES256", "ES384")},
     ("ES256", "ES384")),
])
def test_default_and_configured_algorithms(fields, algorithms):
    assert JWTVerifier.from_settings(make_settings(**fields)).algorithms == algorithms


def test_settings_from_the_environment():
    settings = settings_from_environment(effective_environment({
        "APP_ID": APP_ID, "APP_CERTIFICATE": APP_CERTIFICATE, "ENV_FILE": "/nonexistent/.env",
        "JWT_PUBLIC_KEY": public_pem(ed25519_key(0)), "JWT_ALGORITHMS": "eddsa",
        "JWT_ISSUER": f"https://other.example.com/, {ISSUER}", "JWT_AUDIENCE": AUDIENCE,
    }))
    verifier = JWTVerifier.from_settings(settings)
    token = make_jwt(good_claims(), key=ed25519_key(0), algorithm="EdDSA")
    assert verifier.verify(token).issuer == ISSUER


# --- round trips --------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_secret_round_trip(alg):
    verifier = JWTVerifier.from_settings(make_settings(jwt_secret=JWT_SECRET, jwt_algorithms=(alg,)))
    token = make_jwt({"sub": "alice", "iss": ISSUER, "groups": ["hosts"]}, algorithm=alg)
    identity = verifier.verify(token)
    assert (identity.subject, identity.issuer) == ("alice", ISSUER)
    assert identity.claims["groups"] == ["hosts"]
    other = "HS512" if alg != "HS512" else "HS256"
    with pytest.raises(Unauthorized) as e:
        verifier.verify(make_jwt(algorithm=other))
    assert_refused(e.value, "", "algorithm")


KEYS = {
    "RS256": lambda n: rsa_key(n), "PS256": lambda n: rsa_key(n),
    "ES256": lambda n: ec_key(n), "ES384": lambda n: ec_key(n, "P-384"),
    "ES512": lambda n: ec_key(n, "P-521"), "EdDSA": lambda n: ed25519_key(n),
}


@pytest.mark.parametrize("form", ["inline", "file", "certificate", "one-line", "bare"])
@pytest.mark.parametrize("alg", list(KEYS))
def test_public_key_round_trip(alg, form, tmp_path):
    private = KEYS[alg](0)
    pem = certificate_pem(private) if form == "certificate" else public_pem(private)
    if form == "file":
        (tmp_path / "key.pem").write_text(pem)
        pem = str(tmp_path / "key.pem")
    elif form == "one-line":
        pem = pem.replace("\n", "\\n")
    elif form == "bare":
        pem = "".join(pem.splitlines()[1:-1])
    verifier = JWTVerifier.from_settings(make_settings(jwt_public_key=pem, jwt_algorithms=(alg,)))
    assert verifier.verify(make_jwt(key=private, algorithm=alg)).subject == "user-1"
    with pytest.raises(Unauthorized) as e:
        verifier.verify(make_jwt(key=KEYS[alg](1), algorithm=alg))
    assert_refused(e.value, "", "token signature is invalid")


def test_issuer_and_audience_lists_accept_any_one():
    verifier = JWTVerifier.from_settings(make_settings(
        jwt_secret=JWT_SECRET, jwt_issuer=("https://a/", ISSUER), jwt_audience=("x", AUDIENCE)))
    assert verifier.verify(make_jwt(good_claims(aud=["y", AUDIENCE]))).issuer == ISSUER


def test_unconfigured_issuer_and_audience_are_not_checked():
    verifier = JWTVerifier.from_settings(make_settings(jwt_secret=JWT_SECRET))
    identity = verifier.verify(make_jwt({"aud": "anything"}, omit=("iss",)))
    assert (identity.subject, identity.issuer) == ("user-1", "")


@pytest.mark.parametrize("claim, offset", [("exp", -3), ("nbf", 3), ("iat", 3)])
def test_leeway(verifier, claim, offset):
    token = make_jwt(good_claims(**{claim: int(time.time()) + offset}))
    assert verifier.verify(token).subject == "user-1"


def test_largest_token_is_accepted_and_one_more_byte_refused(verifier):
    pad = MAX_TOKEN_BYTES - len(make_jwt(good_claims(pad="")))
    while len(token := make_jwt(good_claims(pad="x" * pad))) > MAX_TOKEN_BYTES:
        pad -= 1
    assert len(token) > MAX_TOKEN_BYTES - 4
    assert verifier.verify(token).claims["pad"] == "x" * pad
    while len(token := make_jwt(good_claims(pad="x" * pad))) <= MAX_TOKEN_BYTES:
        pad += 1
    with pytest.raises(Unauthorized) as e:
        verifier.verify(token)
    assert_refused(e.value, token, "larger than 8192 bytes")


# --- refusals -----------------------------------------------------------------------------

def _now() -> int:
    return int(time.time())


REFUSALS = [
    # (id, token factory, fragment of the message)
    ("expired", lambda: make_jwt(good_claims(exp=_now() - 60)), "token has expired"),
    ("nbf in the future", lambda: make_jwt(good_claims(nbf=_now() + 60)), "not valid yet"),
    ("iat in the future", lambda: make_jwt(good_claims(iat=_now() + 60)), "not valid yet"),
    ("wrong issuer", lambda: make_jwt(good_claims(iss="https://evil/")), "issuer is not accepted"),
    ("no issuer", lambda: make_jwt(good_claims(), omit=("iss",)), "no iss claim"),
    ("wrong audience", lambda: make_jwt(good_claims(aud="other")), "audience is not accepted"),
    ("audience list without ours", lambda: make_jwt(good_claims(aud=["a", "b"])), "audience"),
    ("no audience", lambda: make_jwt(good_claims(), omit=("aud",)), "no aud claim"),
    ("empty audience", lambda: make_jwt(good_claims(aud=[])), "no aud claim"),
    ("aud a number", lambda: sign_raw(HS256, good_claims(aud=5)), "aud claim must be"),
    ("aud a list of numbers", lambda: sign_raw(HS256, good_claims(aud=[1])), "aud claim must be"),
    ("no exp", lambda: make_jwt(good_claims(), omit=("exp",)), "no exp claim"),
    ("exp null", lambda: make_jwt(good_claims(exp=None)), "exp claim"),
    ("exp a string", lambda: make_jwt(good_claims(exp=str(_now() + 60))), "exp claim must be a number"),
    ("exp a bool", lambda: make_jwt(good_claims(exp=True)), "exp claim must be a number"),
    ("exp infinite", lambda: sign_raw(HS256, good_claims(exp=float("inf"))), "exp claim"),
    ("exp NaN", lambda: sign_raw(HS256, good_claims(exp=float("nan"))), "exp claim"),
    ("exp a list", lambda: make_jwt(good_claims(exp=[1])), "exp claim must be a number"),
    ("nbf a string", lambda: make_jwt(good_claims(nbf="0")), "nbf claim must be a number"),
    ("iat an object", lambda: make_jwt(good_claims(iat={})), "iat claim must be a number"),
    ("no sub", lambda: make_jwt(good_claims(), omit=("sub",)), "no sub claim"),
    ("sub empty", lambda: make_jwt(good_claims(sub="")), "sub claim must be a non-empty string"),
    ("sub a list", lambda: make_jwt(good_claims(sub=["a"])), "sub claim must be"),
    ("sub a number", lambda: make_jwt(good_claims(sub=42)), "sub claim must be"),
    ("iss a number", lambda: sign_raw(HS256, good_claims(iss=7)), "iss claim must be a string"),
    ("jti a number", lambda: make_jwt(good_claims(jti=7)), "jti claim must be a string"),
    ("alg none", lambda: sign_raw({"alg": "none"}, good_claims()), "algorithm is not accepted"),
    ("alg None", lambda: sign_raw({"alg": "None"}, good_claims()), "algorithm is not accepted"),
    ("alg none signed", lambda: sign_raw({"alg": "none"}, good_claims(), algorithm="HS256"),
     "algorithm is not accepted"),
    ("no alg", lambda: sign_raw({"typ": "JWT"}, good_claims()), "algorithm is not accepted"),
    ("alg a list", lambda: sign_raw({"alg": ["HS256"]}, good_claims(), algorithm="HS256"),
     "algorithm is not accepted"),
    ("alg not allowed", lambda: make_jwt(good_claims(), algorithm="HS512"), "algorithm"),
    ("wrong secret", lambda: make_jwt(good_claims(), key="another-secret-" * 4), "signature is invalid"),
    ("no signature", lambda: make_jwt(good_claims()).rsplit(".", 1)[0] + ".", "signature is invalid"),
    ("payload swapped", lambda: ".".join([make_jwt(good_claims()).split(".")[0],
                                          make_jwt(good_claims(sub="admin")).split(".")[1],
                                          make_jwt(good_claims()).split(".")[2]]), "signature"),
    ("crit", lambda: sign_raw({**HS256, "crit": ["exp"], "exp": 1}, good_claims()), "crit"),
    ("crit b64", lambda: sign_raw({**HS256, "crit": ["b64"], "b64": False}, good_claims()), "crit"),
    ("crit empty", lambda: sign_raw({**HS256, "crit": []}, good_claims()), "crit"),
    ("b64 false", lambda: sign_raw({**HS256, "b64": False}, good_claims()), "token"),
    ("kid a number", lambda: sign_raw({**HS256, "kid": 1}, good_claims()), "kid header"),
    ("oversized", lambda: make_jwt(good_claims(pad="x" * 8192)), "larger than 8192 bytes"),
    ("empty", lambda: "", "empty"),
    ("one segment", lambda: "abcdefghijkl", "malformed"),
    ("two segments", lambda: "abcdefgh.ijklmnop", "malformed"),
    ("four segments", lambda: make_jwt(good_claims()) + ".abcdefgh", "malformed"),
    ("five segments (JWE)", lambda: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "malformed"),
    ("dots only", lambda: "....", "malformed"),
    ("not ascii", lambda: "ééééé.ééééé.ééééé", "malformed"),
    ("lone surrogate", lambda: "\ud800.\ud800.\ud800", "malformed"),
    ("whitespace", lambda: make_jwt(good_claims()).replace(".", ". ", 1), "malformed"),
    ("header not base64", lambda: "!!!!.e30.e30", "malformed"),
    ("header padded wrongly", lambda: make_jwt(good_claims()).replace(".", "==.", 1), "malformed"),
    ("header not JSON", lambda: sign_raw(b"not json", good_claims()), "malformed"),
    ("header a JSON list", lambda: sign_raw(b'["HS256"]', good_claims()), "malformed"),
    ("header deeply nested", lambda: sign_raw(b"[" * 1500 + b"]" * 1500, good_claims()), "malformed"),
    ("payload not JSON", lambda: sign_raw(HS256, b"\xff\xfe not json"), "malformed"),
    ("payload a JSON list", lambda: sign_raw(HS256, b'["sub"]'), "malformed"),
    ("payload deeply nested", lambda: sign_raw(HS256, b"[" * 1500 + b"]" * 1500), "malformed"),
    ("signature not base64", lambda: make_jwt(good_claims()).rsplit(".", 1)[0] + ".!!!!", "malformed"),
]


@pytest.mark.parametrize("make_token, fragment", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(verifier, make_token, fragment):
    token = make_token()
    with pytest.raises(Unauthorized) as e:
        verifier.verify(token)
    assert_refused(e.value, token, fragment)
    assert e.value.token_given


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_algorithm_confusion(alg):
    """An HS256 token keyed with the public PEM is refused by a verifier holding that key."""
    pem = public_pem(KEYS[alg](0))
    verifier = JWTVerifier.from_settings(make_settings(jwt_public_key=pem))
    for secret in (pem, pem.encode(), pem.strip()):
        token = sign_raw(HS256, default_claims(), key=secret if isinstance(secret, bytes) else secret.encode())
        with pytest.raises(Unauthorized) as e:
            verifier.verify(token)
        assert_refused(e.value, token, "algorithm is not accepted")


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c"])
def test_key_headers_are_ignored_and_never_fetched(header):
    attacker = rsa_key(1)
    verifier = JWTVerifier.from_settings(make_settings(jwt_public_key=public_pem(rsa_key(0))))
    with JWKSServer(public_jwk(attacker, "evil")) as server:
        value = {"jku": server.url, "x5u": server.url, "jwk": public_jwk(attacker),
                 "x5c": [certificate_pem(attacker).split("-----")[2].replace("\n", "")]}[header]
        forged = make_jwt(key=attacker, algorithm="RS256", headers={"kid": "evil", header: value})
        with pytest.raises(Unauthorized) as e:
            verifier.verify(forged)
        assert_refused(e.value, forged, "signature is invalid")
        genuine = make_jwt(key=rsa_key(0), algorithm="RS256", headers={header: value})
        assert verifier.verify(genuine).subject == "user-1"
        time.sleep(0.05)
        assert server.hits == 0


# --- numbers: judged exactly, never overflowing ---------------------------------------------

LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a time claim may name
# Time claims outside 0…LATEST, among them integers no float can hold (HUGE) and 1e400 (inf).
ABSURD_TIMES = [HUGE, "-" + HUGE, "1" + "0" * 4000, "1e400", "-1e400", "1e300", str(LATEST + 1), "-1", "-0.5"]


def claims_json(**numbers: str) -> bytes:
    """good_claims() as JSON text, each named claim written as exactly the JSON number given."""
    return json_text(good_claims(**{name: JSONNumber(text) for name, text in numbers.items()}))


@pytest.mark.parametrize("number", ABSURD_TIMES, ids=lambda n: n[:12])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_time_claim_out_of_range_is_malformed(verifier, claim, number):
    for key in (JWT_SECRET, "another-secret-" * 4):  # refused before the signature is looked at
        token = sign_raw(HS256, claims_json(**{claim: number}), key=key)
        with pytest.raises(Unauthorized) as e:
            verifier.verify(token)
        assert_refused(e.value, token, f"token {claim} claim must be a number of seconds from 0 to {LATEST}")
        assert e.value.reason == "malformed"


@pytest.mark.parametrize("numbers, refusal", [
    ({"exp": str(LATEST)}, None),
    ({"exp": f"{LATEST}.0", "iat": "0", "nbf": "0"}, None),
    ({"iat": "-0", "nbf": "-0.0"}, None),  # zero, however it is written
    ({"exp": "-0"}, "token has expired"),
    ({"exp": "-0.0"}, "token has expired"),
], ids=repr)
def test_time_claims_at_the_ends_of_the_range(verifier, numbers, refusal):
    token = sign_raw(HS256, claims_json(**numbers))
    if refusal is None:
        assert verifier.verify(token).subject == "user-1"
    else:
        with pytest.raises(Unauthorized) as e:
            verifier.verify(token)
        assert_refused(e.value, token, refusal)


class Service:
    """The app through Flask's test client, with a shared secret or a JWKS; ``sign`` signs a
    payload (JSON text) as the configured IdP would."""

    def __init__(self, client, sign, jwks: JWKSServer | None = None):
        self.client, self.sign, self.jwks = client, sign, jwks

    def get(self, path: str, payload: bytes):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.sign(payload)}"})


@pytest.fixture(params=["JWT_SECRET", "JWT_JWKS_URL"])
def service(request, env):
    if request.param == "JWT_SECRET":
        yield Service(create_app({**env, "TESTING": True}).test_client(),
                      lambda payload: sign_raw(HS256, payload))
        return
    key = rsa_key(0)
    with JWKSServer(public_jwk(key, kid="k1")) as server:
        jwks_env = {**{k: v for k, v in env.items() if k != "JWT_SECRET"},
                    "JWT_JWKS_URL": server.url, "JWT_ALGORITHMS": "RS256"}
        yield Service(create_app({**jwks_env, "TESTING": True}).test_client(),
                      lambda payload: sign_raw({"alg": "RS256", "kid": "k1"}, payload, key=key), server)


@pytest.mark.parametrize("number", [HUGE, "-" + HUGE, "1e400", "-1"], ids=lambda n: n[:12])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_the_service_answers_an_absurd_time_claim_with_a_401(service, logs, claim, number):
    r = service.get("/rtm/bob/", claims_json(**{claim: number}))
    assert r.status_code == 401, r.get_data(as_text=True)
    assert r.json == {"error": f"token {claim} claim must be a number of seconds from 0 to {LATEST}",
                      "code": "401"}
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert not [record for record in logs.records if record.levelname == "ERROR"]  # no traceback
    if service.jwks is not None:
        assert service.jwks.hits == 0  # refused before any key was looked for


@pytest.mark.parametrize("uid_claim, path", [
    (HUGE, "/rtc/live-1/publisher/uid/5/"),
    ("-" + HUGE, "/rtm/bob/"),
    ("1e400", "/rtc/live-1/publisher/userAccount/inf/"),
    ("-1", "/rtc/live-1/publisher/userAccount/-1/"),
    (str(2**32), "/rtc/live-1/publisher/userAccount/4294967296/"),
    ("-0", "/rtc/live-1/publisher/uid/0/"),
    ("5.0", "/rtc/live-1/publisher/uid/5/"),
], ids=repr)
def test_an_absurd_uid_claim_matches_nothing(service, uid_claim, path):
    """An integer uid claim outside Agora's uid range (0…4294967295) is no uid: ``self`` matches
    nothing for that caller, whatever the request (a 403, never a 500)."""
    host = {"sub": "h", "groups": ["hosts"]}
    r = service.get(path, json_text(good_claims(**host, agora_uid=JSONNumber(uid_claim))))
    assert r.status_code == 403, r.get_data(as_text=True)
    assert r.json["code"] == "403" and "not granted" in r.json["error"]
    assert service.get("/rtc/live-1/publisher/uid/5/", json_text(good_claims(**host, agora_uid=5))).status_code == 200


# --- the verified-token cache -------------------------------------------------------------

def test_repeated_token_is_answered_from_the_cache(verifier):
    token = make_jwt(good_claims())
    assert verifier.verify(token) is verifier.verify(token)
    assert verifier.verify(make_jwt(good_claims(jti="other"))) is not verifier.verify(token)


def test_cached_token_is_refused_once_expired():
    verifier = JWTVerifier.from_settings(make_settings(jwt_secret=JWT_SECRET, jwt_leeway=0))
    exp = _now() + 2  # at least a second away: the two verifies below come before it
    token = make_jwt({"exp": exp})
    assert verifier.verify(token) is verifier.verify(token)
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(Unauthorized) as e:
        verifier.verify(token)
    assert_refused(e.value, token, "token has expired")


def test_cache_is_bounded_least_recently_used_first():
    verifier = JWTVerifier(key=SigningKey(JWT_SECRET.encode(), ("HS256",)), max_cached=2)
    a, b, c = (make_jwt({"jti": jti}) for jti in "abc")
    first_a, first_b = verifier.verify(a), verifier.verify(b)
    assert verifier.verify(a) is first_a  # a is now the most recently used
    verifier.verify(c)  # evicts b
    assert verifier.verify(a) is first_a
    assert verifier.verify(b) is not first_b


def test_concurrent_verification(verifier):
    tokens = [make_jwt(good_claims(sub=f"user-{i}")) for i in range(50)]
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                for i, token in enumerate(tokens):
                    assert verifier.verify(token).subject == f"user-{i}"
        except BaseException as e:  # noqa: BLE001 (collected, and failed on in the test thread)
            failures.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


# --- any input: a 401 or an identity, never another exception ------------------------------

@hypothesis_settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9_\-]{0,40}(\.[A-Za-z0-9_\-=]{0,40}){0,4}"))
def test_any_string_is_a_401(verifier, token):
    with pytest.raises(Unauthorized) as e:
        verifier.verify(token)
    assert_refused(e.value, token)


@st.composite
def near_valid(draw, valid, fields: list[str]) -> dict:
    """``valid()`` with up to three fields replaced by arbitrary JSON or removed."""
    value = valid()
    for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
        if draw(st.booleans()):
            value[name] = draw(CLAIM_VALUES)
        else:
            value.pop(name, None)
    return value


@hypothesis_settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=near_valid(HS256.copy, ["alg", "typ", "kid", "crit", "jku", "b64"]),
    payload=near_valid(good_claims, ["sub", "iss", "aud", "exp", "nbf", "iat", "jti"]),
)
def test_any_signed_claims_are_an_identity_or_a_401(verifier, header, payload):
    token = sign_raw(json_text(header), json_text(payload), algorithm="HS256")
    try:
        identity = verifier.verify(token)
    except Unauthorized as e:
        assert_refused(e, token)
        event(e.message)
    else:
        event("accepted")
        assert header["alg"] == "HS256" and "crit" not in header
        assert identity.subject == payload["sub"] and identity.subject
        assert identity.issuer == ISSUER and identity.claims == json.loads(json_text(payload))
