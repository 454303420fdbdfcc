"""Who is asking: the caller's bearer JWT, verified against the configured key.

The key always comes from configuration (``JWT_SECRET``, ``JWT_PUBLIC_KEY`` or ``JWT_JWKS_URL``),
never from the token: ``jku``, ``x5u``, ``jwk`` and ``x5c`` headers are ignored, and any ``crit``
header is refused. ``JWTVerifier.from_settings`` checks the configuration once at start-up and
raises ``ConfigError`` naming the setting; ``verify`` raises only ``Unauthorized`` (401) or
``ServiceUnavailable`` (503, cold JWKS cache and endpoint down).
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.utils import base64url_decode

from auth.jwks import (
    CURVE_ALGORITHMS, HMAC_ALGORITHMS, KEY_TYPES, MIN_RSA_BITS, RSA_ALGORITHMS, JWKSCache,
    SigningKey,
)
from auth.models import Identity
from config.settings import (
    JWT_ALGORITHMS, JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET, ConfigError, Settings,
)
from errors import Unauthorized

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 8192  # checked before any parsing
MAX_CACHED_TOKENS = 10_000
MIN_SECRET_BYTES = 32
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: key >= hash size
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_BARE_KEY = re.compile(r"M[A-Za-z0-9+/]{40,}={0,2}")  # base64 DER: a SEQUENCE starts "M"
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_CANONICAL = {alg.upper(): alg for alg in KEY_TYPES}  # settings upper-cases: EDDSA -> EdDSA

_MESSAGES: dict[type[Exception], str] = {
    jwt.ExpiredSignatureError: "token has expired",
    jwt.ImmatureSignatureError: "token is not valid yet",
    jwt.InvalidAudienceError: "token audience is not accepted",
    jwt.InvalidIssuerError: "token issuer is not accepted",
    jwt.InvalidSignatureError: "token signature is invalid",
    jwt.InvalidAlgorithmError: "token algorithm is not accepted",
    InvalidSubjectError: "token sub claim must be a non-empty string",
    jwt.InvalidIssuedAtError: "token iat claim must be a number",
    InvalidJTIError: "token jti claim must be a string",
    jwt.DecodeError: "token is malformed",
}


def bearer_token(header_value: str | None) -> str:
    """The token of an ``Authorization: Bearer <jwt>`` header value."""
    if not header_value or not header_value.strip():
        raise Unauthorized("Authorization header is missing", token_given=False)
    scheme, _, credentials = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization header must use the Bearer scheme", token_given=False)
    credentials = credentials.strip(" ")
    if not _BEARER.fullmatch(credentials):
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return credentials


class _ClaimTypeError(jwt.InvalidTokenError):
    """A registered claim of the wrong type; the message is ours and safe to show."""


class _StrictJWT(jwt.PyJWT):
    """pyjwt, plus type checks on the registered claims (pyjwt accepts ``"exp": "123"``).

    ``_decode_payload`` is pyjwt's documented hook; it runs after the signature check.
    """

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        payload = super()._decode_payload(decoded)
        for name in ("exp", "nbf", "iat"):
            if name in payload and not _is_number(payload[name]):
                raise _ClaimTypeError(f"token {name} claim must be a number of seconds")
        if "sub" in payload and not (isinstance(payload["sub"], str) and payload["sub"]):
            raise _ClaimTypeError("token sub claim must be a non-empty string")
        if "iss" in payload and not isinstance(payload["iss"], str):
            raise _ClaimTypeError("token iss claim must be a string")
        aud = payload.get("aud")
        if "aud" in payload and not (
            isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
        ):
            raise _ClaimTypeError("token aud claim must be a string or a list of strings")
        return payload


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _VerifiedTokens:
    """An LRU of verified tokens, each answered until its ``exp`` (+ leeway) passes."""

    def __init__(self, maxsize: int):
        self._maxsize = maxsize
        self._entries: OrderedDict[str, tuple[Identity, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, now: float, generation: int) -> Identity | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            identity, valid_until, verified_in = entry
            if now >= valid_until or verified_in != generation:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return identity

    def put(self, token: str, identity: Identity, valid_until: float, generation: int) -> None:
        with self._lock:
            self._entries[token] = (identity, valid_until, generation)
            self._entries.move_to_end(token)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)


class JWTVerifier:
    """Verifies bearer JWTs against one configured key source; build it with ``from_settings``.

    Tokens already verified are answered from a bounded LRU until their ``exp`` (+ leeway), or
    until the JWKS's usable keys change; thread-safe.
    """

    def __init__(
        self,
        *,
        key: SigningKey | None = None,
        jwks: JWKSCache | None = None,
        issuer: Sequence[str] = (),
        audience: Sequence[str] = (),
        leeway: int = 30,
        max_cached: int = MAX_CACHED_TOKENS,
    ):
        if (key is None) == (jwks is None):
            raise ValueError("give exactly one of key or jwks")
        self._key = key
        self._jwks = jwks
        self.algorithms: tuple[str, ...] = key.algorithms if key is not None else jwks.algorithms
        self._issuer = tuple(issuer) or None
        self._audience = list(audience) or None
        self._leeway = leeway
        require = ["exp", "sub"] + ["iss"] * bool(issuer) + ["aud"] * bool(audience)
        self._jwt = _StrictJWT(options={
            "require": require,
            "verify_iss": bool(issuer),
            "verify_aud": bool(audience),  # unset: accept whatever aud the IdP puts in
            "enforce_minimum_key_length": True,
        })
        self._verified = _VerifiedTokens(max_cached)

    @classmethod
    def from_settings(cls, settings: Settings) -> JWTVerifier:
        """Check the JWT_* settings and prepare keys, algorithms and options, once."""
        given = [name for name, value in (
            (JWT_SECRET, settings.jwt_secret),
            (JWT_PUBLIC_KEY, settings.jwt_public_key),
            (JWT_JWKS_URL, settings.jwt_jwks_url),
        ) if value]
        if not given:
            raise ConfigError(
                f"no JWT key is configured: "
                f"set one of {JWT_SECRET}, {JWT_PUBLIC_KEY} or {JWT_JWKS_URL}"
            )
        if len(given) > 1:
            raise ConfigError(f"set only one of {', '.join(given)}")
        key, jwks = None, None
        if settings.jwt_secret:
            key = _secret_key(settings.jwt_secret, settings.jwt_algorithms)
        elif settings.jwt_public_key:
            key = _public_key(settings.jwt_public_key, settings.jwt_algorithms)
        else:
            jwks = _jwks(settings)
            if not settings.jwt_audience:
                log.warning("JWT_AUDIENCE is not set: tokens from %s are accepted for any audience",
                            settings.jwt_jwks_url)
        return cls(key=key, jwks=jwks, issuer=settings.jwt_issuer,
                   audience=settings.jwt_audience, leeway=settings.jwt_leeway)

    def verified_before(self, token: str) -> Identity | None:
        """The identity of a token this verifier accepted before and still would, else None.

        No signature is checked: a token that is not in the cache is simply not known here.
        """
        generation = self._jwks.generation if self._jwks is not None else 0
        return self._verified.get(token, time.time(), generation)

    def verify(self, token: str) -> Identity:
        """The identity a token proves; ``Unauthorized`` or ``ServiceUnavailable`` otherwise."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("token is empty or not a string")
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized(f"token is larger than {MAX_TOKEN_BYTES} bytes")
        now = time.time()
        generation = self._jwks.generation if self._jwks is not None else 0
        identity = self._verified.get(token, now, generation)
        if identity is not None:
            return identity
        header = _header(token)
        if "crit" in header:
            raise Unauthorized("token has critical header extensions (crit); none are supported")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Unauthorized("token algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("token kid header must be a string")
        key = self._key if self._key is not None else self._jwks.key_for(kid)
        if alg not in key.algorithms:
            raise Unauthorized("token algorithm does not fit its key")
        try:
            claims = self._jwt.decode(token, key.key, algorithms=key.algorithms,
                                      audience=self._audience, issuer=self._issuer,
                                      leeway=self._leeway)
        except _ClaimTypeError as e:
            raise Unauthorized(str(e)) from e
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"token has no {e.claim} claim") from e
        except jwt.PyJWTError as e:
            raise Unauthorized(_MESSAGES.get(type(e), "token is invalid")) from e
        identity = Identity(subject=claims["sub"], issuer=claims.get("iss") or "", claims=claims)
        self._verified.put(token, identity, claims["exp"] + self._leeway, generation)
        return identity


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to pick the key; pyjwt parses the whole token strictly later."""
    if not token.isascii() or token.count(".") != 2:
        raise Unauthorized("token is malformed")
    try:
        header = json.loads(base64url_decode(token[:token.index(".")]))
    except (ValueError, RecursionError) as e:  # binascii.Error and JSONDecodeError are ValueErrors
        raise Unauthorized("token is malformed") from e
    if not isinstance(header, dict):
        raise Unauthorized("token is malformed")
    return header


def _algorithms(configured: Sequence[str], source: str, fits: Sequence[str]) -> tuple[str, ...]:
    """``JWT_ALGORITHMS`` checked against what the key fits; the first fit by default."""
    algorithms: list[str] = []
    for name in configured:
        if name.upper() == "NONE":
            raise ConfigError(f"{JWT_ALGORITHMS} must not include none")
        if name.upper() not in _CANONICAL:
            raise ConfigError(
                f"{JWT_ALGORITHMS}: unsupported algorithm {name!r} (use {', '.join(KEY_TYPES)})"
            )
        if _CANONICAL[name.upper()] not in algorithms:
            algorithms.append(_CANONICAL[name.upper()])
    if len({KEY_TYPES[alg] for alg in algorithms}) > 1:
        raise ConfigError(f"{JWT_ALGORITHMS} mixes families: {', '.join(algorithms)}")
    misfits = [alg for alg in algorithms if alg not in fits]
    if misfits:
        raise ConfigError(
            f"{JWT_ALGORITHMS}: {', '.join(misfits)} does not fit {source} (use {', '.join(fits)})"
        )
    return tuple(algorithms) or (fits[0],)


def _secret_key(secret: str, configured: Sequence[str]) -> SigningKey:
    algorithms = _algorithms(configured, JWT_SECRET, HMAC_ALGORITHMS)
    raw = secret.encode("utf-8")
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(f"{JWT_SECRET} must be at least {MIN_SECRET_BYTES} bytes")
    for alg in algorithms:
        if len(raw) < _HMAC_MIN_BYTES[alg]:
            raise ConfigError(
                f"{JWT_SECRET} must be at least {_HMAC_MIN_BYTES[alg]} bytes for {alg} "
                "(RFC 7518 §3.2)"
            )
    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(raw)
    except jwt.InvalidKeyError:
        raise ConfigError(
            f"{JWT_SECRET} looks like a key or certificate; put public keys in {JWT_PUBLIC_KEY}"
        ) from None
    return SigningKey(key=raw, algorithms=algorithms)


def _public_key(value: str, configured: Sequence[str]) -> SigningKey:
    """A PEM public key or certificate, inline or in a file, and the algorithms it fits."""
    text = value.strip()
    if len(text) % 4 == 0 and _BARE_KEY.fullmatch(text):
        # The base64 body alone, as Keycloak's realm "Keys" page shows it.
        text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    elif not text.startswith("-----BEGIN"):
        try:
            text = Path(text).expanduser().read_text(encoding="utf-8")
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"{JWT_PUBLIC_KEY} is neither a PEM nor a readable PEM file: {e}"
            ) from None
    elif "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")  # a PEM squeezed onto one line of an .env file
    pem = text.encode("utf-8")
    if b"PRIVATE KEY-----" in pem:
        raise ConfigError(
            f"{JWT_PUBLIC_KEY} holds a private key; give the public key or certificate"
        )
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{JWT_PUBLIC_KEY} is not a PEM public key or certificate") from None
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{JWT_PUBLIC_KEY}: the RSA key has {key.key_size} bits; "
                f"at least {MIN_RSA_BITS} are needed"
            )
        fits, source = RSA_ALGORITHMS, f"the RSA key in {JWT_PUBLIC_KEY}"
    elif isinstance(key, EllipticCurvePublicKey) and key.curve.name in _EC_CURVES:
        crv = _EC_CURVES[key.curve.name]
        fits, source = (CURVE_ALGORITHMS[crv],), f"the {crv} key in {JWT_PUBLIC_KEY}"
    elif isinstance(key, Ed25519PublicKey):
        fits, source = ("EdDSA",), f"the Ed25519 key in {JWT_PUBLIC_KEY}"
    else:
        raise ConfigError(
            f"{JWT_PUBLIC_KEY}: unsupported key type; use RSA, EC (P-256, P-384, P-521) or Ed25519"
        )
    return SigningKey(key=key, algorithms=_algorithms(configured, source, fits))


def _jwks(settings: Settings) -> JWKSCache:
    url = urlparse(settings.jwt_jwks_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(f"{JWT_JWKS_URL} must be an http(s) URL")
    fits = RSA_ALGORITHMS + tuple(CURVE_ALGORITHMS.values()) + ("EdDSA",)
    return JWKSCache(
        settings.jwt_jwks_url,
        _algorithms(settings.jwt_algorithms, JWT_JWKS_URL, fits),
        cache_ttl=settings.jwt_jwks_cache_ttl,
        stale_ttl=settings.jwt_jwks_stale_ttl,
        cooldown=settings.jwt_jwks_cooldown,
        timeout=settings.jwt_jwks_timeout,
    )
