"""Who is asking: the caller's bearer JWT, verified against the configured key.

The key always comes from configuration (``JWT_SECRET``, ``JWT_PUBLIC_KEY`` or ``JWT_JWKS_URL``),
never from the token: ``jku``, ``x5u``, ``jwk`` and ``x5c`` headers are ignored, and any ``crit``
header is refused. ``JWTVerifier.from_settings`` checks the configuration once at start-up and
raises ``ConfigError`` naming the setting; ``verify`` raises only ``Unauthorized`` (401) or
``ServiceUnavailable`` (503, cold JWKS cache and endpoint down). A verified token is remembered
until its ``exp`` (+ leeway) and, with a JWKS, no longer than the key set it was verified
against is fresh and current.
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, cast

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.utils import base64url_decode

from config.names import JWT_JWKS_URL, JWT_PUBLIC_KEY, JWT_SECRET, ConfigError
from config.settings import Settings
from exceptions import Unauthorized

from .jwks import JWKSCache, jwks_cache
from .keys import SigningKey, public_key, secret_key
from .models import Identity

log = logging.getLogger(f"agora_token_server.{__name__}")  # the service's JSON lines

MAX_TOKEN_BYTES = 8192  # checked before any parsing
MAX_CACHED_TOKENS = 10_000
# The last second a time claim may name, 9999-12-31T23:59:59Z (datetime's last year); a token
# that claims to live past it, or to be from before 1970, was not made by an IdP.
LATEST_TIME = 253_402_300_799
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token

# PyJWT's refusals: the message for the client and the reason for the metrics (exceptions.Unauthorized.REASONS).
_MESSAGES: dict[type[Exception], tuple[str, str]] = {
    jwt.ExpiredSignatureError: ("token has expired", "expired"),
    jwt.ImmatureSignatureError: ("token is not valid yet", "invalid"),
    jwt.InvalidAudienceError: ("token audience is not accepted", "audience"),
    jwt.InvalidIssuerError: ("token issuer is not accepted", "issuer"),
    jwt.InvalidSignatureError: ("token signature is invalid", "bad_signature"),
    jwt.InvalidAlgorithmError: ("token algorithm is not accepted", "invalid"),
    InvalidSubjectError: ("token sub claim must be a non-empty string", "malformed"),
    jwt.InvalidIssuedAtError: ("token iat claim must be a number", "malformed"),
    InvalidJTIError: ("token jti claim must be a string", "malformed"),
    jwt.DecodeError: ("token is malformed", "malformed"),
}


def bearer_token(header_value: str | None) -> str:
    """The token of an ``Authorization: Bearer <jwt>`` header value."""
    if not header_value or not header_value.strip():
        raise Unauthorized("Authorization header is missing", token_given=False)
    scheme, _, credentials = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization header must use the Bearer scheme", token_given=False, reason="malformed")
    credentials = credentials.strip(" ")
    if not _BEARER.fullmatch(credentials):
        raise Unauthorized("Authorization header must be 'Bearer <token>'", reason="malformed")
    return credentials


def _check_claim_types(payload: dict[str, Any]) -> None:
    """Refuse registered claims of the wrong type, which pyjwt lets through or reports vaguely:
    it reads ``exp``/``nbf``/``iat`` with ``int()``, so ``"exp": "123"`` and ``true`` pass."""
    for name in ("exp", "nbf", "iat"):
        if name in payload and not _is_time(payload[name]):
            raise Unauthorized(f"token {name} claim must be a number of seconds from 0 to {LATEST_TIME}",
                               reason="malformed")
    if "sub" in payload and not (isinstance(payload["sub"], str) and payload["sub"]):
        raise Unauthorized("token sub claim must be a non-empty string", reason="malformed")
    if "iss" in payload and not isinstance(payload["iss"], str):
        raise Unauthorized("token iss claim must be a string", reason="malformed")
    aud = payload.get("aud")
    if "aud" in payload and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise Unauthorized("token aud claim must be a string or a list of strings", reason="malformed")


def _is_time(value: Any) -> bool:
    """A JSON number within 0…LATEST_TIME. Compared, never converted: an integer of 309 digits or
    more has no float, so ``math.isfinite`` or ``float()`` would raise OverflowError (a 500)
    where the client deserves a 401. NaN fails every comparison; ±inf (``1e400``) is out of range."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= LATEST_TIME


class _VerifiedTokens:
    """An LRU of verified tokens, each answered until its deadline while its key set is current.

    The deadline is the token's ``exp`` (+ leeway), or sooner the time its JWKS key set is due
    for a refresh; after it the token is verified again (which refreshes the key set), so a
    cached answer never outlives the key that signed it.
    """

    def __init__(self, maxsize: int):
        self._maxsize = maxsize
        self._entries: OrderedDict[str, tuple[Identity, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, now: float, generation: int) -> Identity | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            identity, until, verified_in = entry
            if now >= until or verified_in != generation:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return identity

    def put(self, token: str, identity: Identity, until: float, generation: int) -> None:
        with self._lock:
            self._entries[token] = (identity, until, generation)
            self._entries.move_to_end(token)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)


class JWTVerifier:
    """Verifies bearer JWTs against one configured key source; build it with ``from_settings``.

    Tokens already verified are answered from a bounded LRU until their ``exp`` (+ leeway); with
    a JWKS, only while the key set they were verified against is fresh (``JWT_JWKS_CACHE_TTL``)
    and still the current one. Thread-safe.
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
        if key is not None and jwks is None:
            algorithms = key.algorithms
        elif jwks is not None and key is None:
            algorithms = jwks.algorithms
        else:
            raise ValueError("give exactly one of key or jwks")
        self._key = key
        self.jwks = jwks  # the JWKS cache, when keys come from one
        self.algorithms: tuple[str, ...] = algorithms
        self._issuer = tuple(issuer) or None
        self._audience = list(audience) or None
        self._leeway = leeway
        require = ["exp", "sub"] + ["iss"] * bool(issuer) + ["aud"] * bool(audience)
        self._jwt = jwt.PyJWT(options={
            "require": require,
            "verify_iss": bool(issuer),
            "verify_aud": bool(audience),  # unset: accept whatever aud the IdP puts in
            "enforce_minimum_key_length": True,
        })
        self._verified = _VerifiedTokens(max_cached)

    @classmethod
    def from_settings(cls, settings: Settings, on_jwks_fetch: Callable[[str], None] | None = None) -> JWTVerifier:
        """Check the JWT_* settings and prepare keys, algorithms and options, once;
        ``on_jwks_fetch`` hears each JWKS fetch's result (when keys come from a JWKS)."""
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
            key = secret_key(settings.jwt_secret, settings.jwt_algorithms)
        elif settings.jwt_public_key:
            key = public_key(settings.jwt_public_key, settings.jwt_algorithms)
        else:
            jwks = jwks_cache(settings, on_jwks_fetch)
            if not settings.jwt_audience:
                log.warning("JWT_AUDIENCE is not set: tokens from %s are accepted for any audience",
                            settings.jwt_jwks_url)
        return cls(key=key, jwks=jwks, issuer=settings.jwt_issuer,
                   audience=settings.jwt_audience, leeway=settings.jwt_leeway)

    def verify(self, token: str) -> Identity:
        """The identity a token proves; ``Unauthorized`` or ``ServiceUnavailable`` otherwise."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("token is empty or not a string", reason="malformed")
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized(f"token is larger than {MAX_TOKEN_BYTES} bytes", reason="malformed")
        now = time.time()
        generation = self.jwks.generation if self.jwks is not None else 0
        identity = self._verified.get(token, now, generation)
        if identity is not None:
            return identity
        header = _segment(token, 0)
        if "crit" in header:
            raise Unauthorized("token has critical header extensions (crit); none are supported")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Unauthorized("token algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("token kid header must be a string", reason="malformed")
        # Claim types first, on the payload as sent (pyjwt would judge "exp": true as a time).
        # This only ever refuses; the identity comes from the claims pyjwt verifies below.
        _check_claim_types(_segment(token, 1))
        if self._key is not None:
            key, until = self._key, math.inf
        else:
            # __init__ took exactly one of key and jwks
            key, keyset = cast(JWKSCache, self.jwks).key_for(kid)
            generation = keyset.generation
            # When the key set is due, as wall-clock time like exp: a hit compares one number.
            until = now + (keyset.fresh_until - time.monotonic())
        if alg not in key.algorithms:
            raise Unauthorized("token algorithm does not fit its key")
        try:
            claims = self._jwt.decode(token, key.key, algorithms=key.algorithms,
                                      audience=self._audience, issuer=self._issuer,
                                      leeway=self._leeway)
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"token has no {e.claim} claim", reason="malformed") from e
        except jwt.PyJWTError as e:
            message, reason = _MESSAGES.get(type(e), ("token is invalid", "invalid"))
            raise Unauthorized(message, reason=reason) from e
        identity = Identity(subject=claims["sub"], issuer=claims.get("iss") or "", claims=claims)
        self._verified.put(token, identity, min(claims["exp"] + self._leeway, until), generation)
        return identity


def _segment(token: str, index: int) -> dict[str, Any]:
    """The JOSE header (0) or the claims (1) as sent, read only to pick the key and to refuse
    early; pyjwt parses and verifies the whole token strictly later."""
    if not token.isascii() or token.count(".") != 2:
        raise Unauthorized("token is malformed", reason="malformed")
    try:
        value = json.loads(base64url_decode(token.split(".")[index]))
    except (ValueError, RecursionError) as e:  # binascii.Error and JSONDecodeError are ValueErrors
        raise Unauthorized("token is malformed", reason="malformed") from e
    if not isinstance(value, dict):
        raise Unauthorized("token is malformed", reason="malformed")
    return value
