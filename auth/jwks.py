"""The signing keys of a remote JWKS (``JWT_JWKS_URL``), fetched and cached for ``auth.jwt``.

pyjwt's ``PyJWKClient`` does the HTTP fetch (http(s) only, no redirects, a timeout) and
``PyJWK`` parses each key. This module adds what they lack:

- **stale-if-error**: known keys keep working for ``JWT_JWKS_STALE_TTL`` after the last good
  fetch while the endpoint is down; a cold cache answers 503 instead of hanging;
- **a cooldown after every fetch attempt**, failed ones included, so neither a flood of unknown
  ``kid`` values nor an outage becomes a flood of fetches;
- **single flight**: concurrent requests wait for one fetch instead of making N;
- **family filtering**: only keys whose ``kty``/``crv``/``alg`` fit ``JWT_ALGORITHMS`` are usable,
  and an endpoint serving nothing usable counts as down.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlparse

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK, PyJWKClient, PyJWTError

from config.names import JWT_JWKS_URL, ConfigError
from config.settings import Settings
from exceptions import ServiceUnavailable, Unauthorized

from .keys import CURVE_ALGORITHMS, EDDSA_CURVES, MIN_RSA_BITS, RSA_ALGORITHMS, SigningKey, check_algorithms

log = logging.getLogger(f"agora_token_server.{__name__}")  # the service's JSON lines

USER_AGENT = "agora-token-server"  # urllib's default agent is refused by some CDNs


@dataclass(frozen=True, eq=False)
class KeySet:
    """One good fetch of the JWKS: its usable keys, and until when they are fresh."""

    keys: tuple[SigningKey, ...]
    by_kid: Mapping[str, SigningKey]
    fingerprint: frozenset[str]
    fetched_at: float  # time.monotonic()
    fresh_until: float  # time.monotonic(); a lookup after this refetches
    generation: int  # the JWKSCache generation these keys belong to


def usable_key(jwk: Any, algorithms: Iterable[str]) -> SigningKey | None:
    """The ``SigningKey`` for one JWK, or None when it cannot verify any allowed algorithm."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None  # not a JWK, an encryption key, or private material: never use it
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not isinstance(crv, str):
        crv = None
    if kty == "RSA":
        fits: tuple[str, ...] = RSA_ALGORITHMS
    elif kty == "EC" and crv in CURVE_ALGORITHMS:
        fits = (CURVE_ALGORITHMS[crv],)
    elif kty == "OKP" and crv in EDDSA_CURVES:
        fits = ("EdDSA",)
    else:
        return None
    if "alg" in jwk:
        fits = tuple(a for a in fits if a == jwk["alg"])
    usable = tuple(a for a in algorithms if a in fits)
    if not usable:
        return None
    try:
        key = PyJWK(jwk, usable[0]).key
    except (PyJWTError, TypeError, ValueError):  # malformed key material: not usable
        return None
    if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return None
    return SigningKey(key=key, algorithms=usable, kid=kid)


class JWKSCache:
    """The usable keys of one JWKS URL: fetched on demand, cached, refreshed with care.

    Keys are fresh for ``cache_ttl`` seconds after a good fetch; a request after that refetches.
    An unknown ``kid`` refetches at once unless a fetch was attempted less than ``cooldown``
    seconds ago. When fetches fail, the last good keys stay usable until ``stale_ttl`` after
    that fetch; with none, lookups raise ``ServiceUnavailable``. ``generation`` changes
    whenever the set of usable keys does; ``key_for`` also answers the ``KeySet`` a key came
    from, so a caller can keep a result only while that key set is fresh and current.
    """

    def __init__(
        self,
        url: str,
        algorithms: Iterable[str],
        *,
        cache_ttl: float = 300.0,
        stale_ttl: float = 3600.0,
        cooldown: float = 5.0,
        timeout: float = 2.0,
        on_fetch: Callable[[str], None] | None = None,
    ):
        self.url = url
        self.algorithms = tuple(algorithms)
        # Called with each fetch's result ("changed", "unchanged" or "failed"): the app counts them.
        self.on_fetch: Callable[[str], None] = on_fetch or (lambda result: None)
        self._client = PyJWKClient(
            url, cache_jwk_set=False, timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
        self._fresh_for = cache_ttl
        self._usable_for = max(cache_ttl, stale_ttl)
        self._cooldown = cooldown
        self._timeout = timeout
        self._retry_after = {"Retry-After": str(max(1, math.ceil(cooldown)))}
        self._lock = threading.Lock()  # held only by the thread fetching
        self._keyset: KeySet | None = None
        self._attempts = 0
        self._attempted_at = -math.inf  # when the last fetch attempt ended, good or bad
        self.generation = 0

    def key_for(self, kid: str | None) -> tuple[SigningKey, KeySet]:
        """The key a token names by ``kid`` (or the only key, for a token without one), and the
        key set it belongs to (which may be stale, while fetches fail)."""
        seen = self._attempts
        keyset = self._keyset
        now = time.monotonic()
        if keyset is None or now >= keyset.fresh_until:
            # Cold or due: one thread fetches; with stale keys at hand, the others don't wait.
            if now - self._attempted_at >= self._cooldown:
                self._refresh(seen, wait=not self._usable(keyset, now))
            keyset = self._keyset
            if not self._usable(keyset, time.monotonic()):
                raise ServiceUnavailable(
                    "the JWKS endpoint is unavailable; try again shortly",
                    headers=self._retry_after,
                )
            return self._find(keyset, kid)
        if kid is not None and kid not in keyset.by_kid and now - self._attempted_at >= self._cooldown:
            self._refresh(seen, wait=True)
            keyset = self._keyset or keyset  # not None again once fetched (a failed fetch keeps it)
        return self._find(keyset, kid)

    def _usable(self, keyset: KeySet | None, now: float) -> TypeGuard[KeySet]:
        return keyset is not None and now - keyset.fetched_at < self._usable_for

    @staticmethod
    def _find(keyset: KeySet, kid: str | None) -> tuple[SigningKey, KeySet]:
        if kid is None:
            if len(keyset.keys) == 1:
                return keyset.keys[0], keyset
            raise Unauthorized("token has no key id (kid) and the JWKS has several keys", reason="unknown_key")
        key = keyset.by_kid.get(kid)
        if key is None:
            raise Unauthorized("token key id (kid) is not in the JWKS", reason="unknown_key")
        return key, keyset

    def _refresh(self, seen: int, *, wait: bool) -> None:
        """Fetch once, unless another thread fetched since ``seen`` or the cooldown holds."""
        if not (self._lock.acquire(timeout=self._timeout) if wait else self._lock.acquire(False)):
            return
        try:
            if self._attempts == seen and time.monotonic() - self._attempted_at >= self._cooldown:
                self._fetch()
        finally:
            self._lock.release()

    def _fetch(self) -> None:
        try:
            keyset = self._parse(self._client.fetch_data())
        except (PyJWTError, OSError, ValueError, RecursionError) as e:
            # Garbage counts as an outage: keep the keys we have.
            log.warning("JWKS fetch from %s failed: %s", self.url, e)
            self.on_fetch("failed")
        else:
            changed = keyset.generation != self.generation
            if changed:
                self.generation = keyset.generation
                log.info("JWKS from %s: %d usable key(s)", self.url, len(keyset.keys))
            self._keyset = keyset
            self.on_fetch("changed" if changed else "unchanged")
        finally:
            self._attempted_at = time.monotonic()
            self._attempts += 1

    def _parse(self, data: Any) -> KeySet:
        jwks = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(jwks, list):
            raise ValueError("the response has no 'keys' list")
        keys, fingerprint = [], set()
        for jwk in jwks:
            key = usable_key(jwk, self.algorithms)
            if key is not None:
                keys.append(key)
                fingerprint.add(json.dumps(jwk, sort_keys=True))
        if not keys:
            raise ValueError(f"no key fits {', '.join(self.algorithms)}")
        by_kid: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, key)
        changed = self._keyset is None or fingerprint != self._keyset.fingerprint
        fetched_at = time.monotonic()
        return KeySet(tuple(keys), by_kid, frozenset(fingerprint), fetched_at,
                      fetched_at + self._fresh_for, self.generation + changed)


def jwks_cache(settings: Settings, on_fetch: Callable[[str], None] | None = None) -> JWKSCache:
    """The cache for ``JWT_JWKS_URL``, its algorithms checked against the key types a JWKS may hold;
    ``on_fetch`` hears each fetch's result."""
    url = settings.jwt_jwks_url or ""  # unset: refused below, as an empty one is
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{JWT_JWKS_URL} must be an http(s) URL")
    fits = RSA_ALGORITHMS + tuple(CURVE_ALGORITHMS.values()) + ("EdDSA",)
    return JWKSCache(
        url,
        check_algorithms(settings.jwt_algorithms, JWT_JWKS_URL, fits),
        cache_ttl=settings.jwt_jwks_cache_ttl,
        stale_ttl=settings.jwt_jwks_stale_ttl,
        cooldown=settings.jwt_jwks_cooldown,
        timeout=settings.jwt_jwks_timeout,
        on_fetch=on_fetch,
    )
