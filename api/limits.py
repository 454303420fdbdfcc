"""Rate limits: per client IP on every request, per user (issuer + subject) on every token route.

Counted with ``limits`` (the engine flask-limiter is built on), in the storage that
``RATELIMIT_STORAGE_URI`` names: memory:// counts in one process, Redis shares the counters
across workers and machines. A request meets, in order (api/front.py):

1. the per-IP limit (``RATE_LIMIT_PER_IP``): every request counts (401s, 404s and preflights
   too), before any JWT signature is checked;
2. authentication, on token routes only (401), so no anonymous request touches a user's bucket;
3. the per-user limit (``RATE_LIMIT_PER_USER``), one bucket per caller across all token routes;
4. the contract: parse, authorize, build.

The default fixed-window strategy costs a dictionary update in memory; in Redis, a Lua script
counts a caller's limits and reads when their windows end in one round trip: one per request
for a caller whose JWT was verified before (``both_hit``), two for a first-seen JWT.
The other strategies go through ``limits``' own rate limiters. When the storage fails (refused,
timed out, READONLY, OOM), this worker counts in its own memory, logs it once, says
``"degraded"`` on /healthz and lets one request try the storage again after 1, 2, 4 … 16 s.
"""
from __future__ import annotations

import math
import time
from email.utils import formatdate
from typing import Any, Mapping, Sequence

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string

from config.settings import ConfigError
from errors import TooManyRequests

from .counters import Count, counter_for
from .observability import app_log

# redis-py waits 5 s by default; a limiter that waits that long is an outage of its own.
REDIS_TIMEOUTS = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}
RETRY_MAX = 16.0  # seconds between attempts on a failed storage, at most


class RateLimits:
    """Both limits, their storage, and what the responses say about them."""

    def __init__(self, per_ip: str, per_user: str, options: Mapping[str, Any]):
        self.enabled = options.get("RATELIMIT_ENABLED", True)
        self.headers_enabled = options.get("RATELIMIT_HEADERS_ENABLED", True)
        self.http_date = options.get("RATELIMIT_HEADER_RETRY_AFTER_VALUE") == "http-date"
        self.prefix = str(options.get("RATELIMIT_KEY_PREFIX", "") or "")
        self.per_ip = tuple(parse_many(per_ip))
        self.per_user = tuple(parse_many(per_user))
        self._suffixes = {scope: [f"{i.amount}/{i.multiples}/{i.GRANULARITY.name}" for i in items]
                          for scope, items in (("ip", self.per_ip), ("user", self.per_user))}
        self.uri = options.get("RATELIMIT_STORAGE_URI", "memory://")
        strategy = options.get("RATELIMIT_STRATEGY", "fixed-window")
        storage_options = dict(options.get("RATELIMIT_STORAGE_OPTIONS") or {})
        if self.uri.startswith(("redis", "valkey")):
            storage_options = {**REDIS_TIMEOUTS, **storage_options}
        self.storage_options = storage_options
        try:
            storage = storage_from_string(self.uri, **storage_options)
        except Exception as e:  # a bad option or URI: refuse to start, naming the setting
            raise ConfigError(f"RATELIMIT_STORAGE_URI / RATELIMIT_STORAGE_OPTIONS: {e}") from None
        self.primary = counter_for(storage, strategy, self.uri, storage_options)
        self.fallback = (counter_for(MemoryStorage(), strategy, "memory://", {})
                         if options.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True) else None)
        self._retry_at = 0.0
        self._retry_in = 1.0
        self.degraded = False

    @property
    def shared(self) -> bool:
        return not self.uri.startswith("memory://")

    def health(self) -> str:
        return "degraded" if self.degraded else "ok"

    def per_ip_hit(self, address: str) -> list[tuple[str, str]]:
        """Count a request from ``address``: its X-RateLimit-* headers, or ``TooManyRequests``."""
        return self._verdict(self._count(self._keys("ip", address), self.per_ip))

    def per_user_hit(self, user: str) -> list[tuple[str, str]]:
        """Count a request by ``user`` (issuer|subject), after its address was counted."""
        return self._verdict(self._count(self._keys("user", user), self.per_user))

    def both_hit(self, address: str, user: str) -> list[tuple[str, str]]:
        """``per_ip_hit`` then ``per_user_hit``, in one round trip where the storage allows it."""
        if not getattr(self.primary, "batched", False) or self.degraded or not self.per_ip or not self.per_user:
            self.per_ip_hit(address)
            return self.per_user_hit(user)
        counts = self._count(self._keys("ip", address) + self._keys("user", user), self.per_ip + self.per_user)
        split = len(self.per_ip)
        by_ip, by_user = counts[:split], counts[split:]
        return self._verdict(by_user) if by_user else self._verdict(by_ip)

    def _keys(self, scope: str, who: str) -> list[str]:
        if not who.isascii():  # a lone surrogate from a JWT claim would fail every storage's encoder
            who = who.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")
        base = f"LIMITER/{self.prefix}/{scope}/{who}/"
        return [base + suffix for suffix in self._suffixes[scope]]

    def _verdict(self, counts: list[Count]) -> list[tuple[str, str]]:
        """The headers for the tightest limit counted, or ``TooManyRequests`` for the one exceeded."""
        if not counts:  # limits off, or none configured
            return []
        tightest = counts[-1]
        if len(counts) > 1 and not tightest.exceeded:
            tightest = min(counts, key=lambda c: c.remaining)
        headers = self._headers(tightest) if self.headers_enabled else []
        if tightest.exceeded:
            retry = max(1, math.ceil(tightest.reset - time.time()))
            value = formatdate(time.time() + retry, usegmt=True) if self.http_date else str(retry)
            raise TooManyRequests("too many requests",
                                  headers=dict(headers + [("Retry-After", value)]) if self.headers_enabled else {})
        return headers

    @staticmethod
    def _headers(count: Count) -> list[tuple[str, str]]:
        return [("X-RateLimit-Limit", str(count.limit)),
                ("X-RateLimit-Remaining", str(max(count.remaining, 0))),
                ("X-RateLimit-Reset", str(math.ceil(count.reset)))]

    def _count(self, keys: list[str], items: Sequence[RateLimitItem]) -> list[Count]:
        """Count in the storage; while it is failing, in this worker's memory.

        While degraded, one request at a time (every 1, 2, 4 … 16 s) counts in the storage
        again: that request is the probe, so a storage that answers a PING but refuses the
        script (READONLY after a failover, OOM) stays degraded instead of flapping.
        """
        if not self.enabled or not items:
            return []
        probe = self.degraded
        if probe:
            now = time.monotonic()
            if now < self._retry_at:
                return self.fallback.hit(keys, items)
            self._retry_at = now + self._retry_in  # the other requests wait for this probe
        try:
            counts = self.primary.hit(keys, items)
        except Exception as e:  # any storage failure: count in memory rather than fail
            if self.fallback is None:
                raise
            self._storage_failed(e, probe)
            return self.fallback.hit(keys, items)
        if probe and self.degraded:
            self.degraded = False
            app_log.warning("rate limit storage is back: counters are shared again",
                            extra={"fields": {"rate_limit_storage": "ok"}})
        return counts

    def _storage_failed(self, error: Exception, probe: bool) -> None:
        """The first failure degrades; a failed probe waits twice as long for the next one.
        Requests that were already on their way to the storage change nothing more."""
        if not self.degraded:
            self.degraded = True
            self._retry_in = 1.0
            app_log.warning("rate limit storage unreachable: each worker counts in its own memory until "
                            "it is back", extra={"fields": {"rate_limit_storage": "degraded",
                                                            "error": type(error).__name__}})
        elif not probe:
            return
        self._retry_at = time.monotonic() + self._retry_in
        self._retry_in = min(self._retry_in * 2, RETRY_MAX)


def warn_if_unshared(limits: RateLimits, workers: int) -> None:
    if limits.enabled and not limits.shared and workers > 1:
        app_log.warning(
            f"RATELIMIT_STORAGE_URI is memory:// with WEB_CONCURRENCY={workers}: each worker counts on "
            f"its own, so every limit lets through up to {workers} times as much; use redis://",
            extra={"fields": {"workers": workers}})

