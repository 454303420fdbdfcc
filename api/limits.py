"""Rate limits, counted by flask-limiter: per client address on every request, per caller on
every route behind the JWT middleware.

One ``Limiter`` per app, configured from flask-limiter's own ``RATELIMIT_*`` settings (strategy,
headers, key prefix, in-memory fallback) plus ours. Where each limit sits in a request's path
is in the one list of it, ``TokenServer.init_app`` (api/extension.py):

- the per-address limit (``RATE_LIMIT_PER_IP``) is an application limit, counted in
  flask-limiter's ``before_request``: every request counts, 401s, 404s, 405s and preflights
  too, before any JWT signature is checked. IPv6 clients are counted per network
  (``RATE_LIMIT_IPV6_PREFIX``, /64 by default): one host holds a whole /64;
- the per-caller limit (``RATE_LIMIT_PER_USER``) is a shared limit keyed by issuer and
  subject: one bucket per caller across every protected route, counted right after the JWT
  middleware (api/guard.py), together with any ``@limiter.limit(...)`` the view carries and
  its blueprint's limits.

A 429 is flask-limiter's ``RateLimitExceeded``, answered by api/error_handlers.py like every error;
flask-limiter adds ``Retry-After`` and ``X-RateLimit-*``. When the storage fails, flask-limiter
counts in this worker's memory (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``, on by default) and
tries the storage again with a growing back-off; /healthz says ``"degraded"`` meanwhile.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from flask import Flask, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits.storage import MemoryStorage

from config.names import RATELIMIT_STORAGE_OPTIONS, RATELIMIT_STORAGE_URI
from config.settings import Settings, memory_storage_warning

from . import metrics
from .observability import UNROUTED, app_log
from .storages import REDIS_SCHEMES, WINDOWS, WORKER_MEMORY, WorkerMemoryStorage

# Our defaults for flask-limiter's settings; an operator's RATELIMIT_* value wins. The fallback
# catches a storage error (refused, timed out, READONLY, OOM) so that none becomes a 5xx; under
# gevent, a request already on its way to a storage that another request has just found dead
# fails after flask-limiter switched, and only swallowing it (logged) keeps that request whole.
DEFAULTS = {"RATELIMIT_HEADERS_ENABLED": True, "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
            "RATELIMIT_SWALLOW_ERRORS": True}
# redis-py waits 5 s by default; a limiter that waits that long is an outage of its own.
REDIS_TIMEOUTS = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}


# The one bucket of every client address that is not an address (no IP address is spelled so).
NOT_AN_ADDRESS = "not-an-address"


@lru_cache(maxsize=4096)
def address_key(address: str, ipv6_prefix: int) -> str:
    """The bucket a client address counts in: itself for IPv4, its /``ipv6_prefix`` for IPv6.

    The address is the one ProxyFix took from a trusted ``X-Forwarded-For``; some load balancers
    append the client's port (``203.0.113.9:4711``, ``[2001:db8::1]:4711``), and a bucket per
    port would be a bucket per connection: the port is dropped. Anything else that does not
    parse counts in one shared bucket, never in one per spelling."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        host, _, port = address.rpartition(":")  # no colon: host is "", which does not parse
        bracketed = host.startswith("[") and host.endswith("]")
        try:
            ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
        except ValueError:
            return NOT_AN_ADDRESS
        if not (port.isascii() and port.isdigit()) or bracketed != (ip.version == 6):
            return NOT_AN_ADDRESS
        # (an IPv6 address and port without brackets is ambiguous: when it parses above, the
        # port is its last group, inside the same /64; when it does not, it is not an address)
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network((ip, ipv6_prefix), strict=False))


class RateLimits:
    """The app's ``Limiter`` and the per-caller limit, with the storage's health."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.limiter: Limiter | None = None
        self._degraded = False

    def init_app(self, app: Flask) -> None:
        """Create the ``Limiter`` from the app's ``RATELIMIT_*`` config and register its hooks:
        its before_request counts the per-address limit, its after_request writes the headers.

        The storage's URI and options come from the settings, never from ``app.config``
        (config/settings.py's ``as_flask_config``): either may hold a password."""
        settings, config = self.settings, app.config
        for name, value in DEFAULTS.items():
            config.setdefault(name, value)
        uri = settings.ratelimit.get(RATELIMIT_STORAGE_URI, "memory://")
        options = dict(settings.ratelimit.get(RATELIMIT_STORAGE_OPTIONS, {}))
        scheme = uri.partition("://")[0]
        # The fixed window (the default strategy) counts in api/storages.py's: no expiry timers
        # in memory, no reads after the increment in Redis. Other strategies get limits' own.
        fixed_window = config.get("RATELIMIT_STRATEGY", "fixed-window") == "fixed-window"
        storage_uri = f"{WORKER_MEMORY}://" if fixed_window and uri == "memory://" else uri
        if scheme in REDIS_SCHEMES:
            defaults = dict(REDIS_TIMEOUTS)
            if scheme.endswith("+sentinel"):
                # limits reads a window's state from a replica by default: the X-RateLimit-*
                # headers then lag the count that decided (docs/rate-limits.md).
                defaults["use_replicas"] = False
            options = {**defaults, **options}
            if fixed_window:
                storage_uri = WINDOWS + uri
        ipv6_prefix = settings.rate_limit_ipv6_prefix

        def client_address() -> str:
            return address_key(request.remote_addr or "-", ipv6_prefix)  # ProxyFix applied TRUSTED_PROXIES

        self.limiter = limiter = Limiter(
            client_address,
            application_limits=[ApplicationLimit(settings.rate_limit_per_ip, scope="ip")],
            request_identifier=lambda: request.endpoint or UNROUTED,  # so 404s and 405s count too
            on_breach=_counted_breach,
            storage_uri=storage_uri,
            storage_options=options,
        )
        limiter.init_app(app)
        # One bucket per caller across every protected view (api/guard.py wraps each in it).
        self.per_caller = limiter.shared_limit(
            settings.rate_limit_per_user, scope="user", key_func=caller_key, override_defaults=False)
        metrics.storage_degraded(False)
        workers = settings.web_concurrency or 1
        if limiter.enabled and isinstance(limiter.storage, (MemoryStorage, WorkerMemoryStorage)) and workers > 1:
            app_log.warning(memory_storage_warning(workers), extra={"fields": {"workers": workers}})

    @property
    def degraded(self) -> bool:
        """True while flask-limiter counts in its in-memory fallback instead of the storage."""
        limiter = self.limiter
        return limiter is not None and limiter.enabled and limiter.limiter.storage is not limiter.storage

    def health(self) -> str:
        return "degraded" if self.degraded else "ok"

    def note_storage_health(self) -> None:
        """Log and export a change of the storage's health (once, by the request that sees it)."""
        degraded = self.degraded
        if degraded != self._degraded:
            self._degraded = degraded
            metrics.storage_degraded(degraded)
            app_log.warning(
                "rate limit storage unreachable: each worker counts in its own memory until it is back"
                if degraded else "rate limit storage is back: counters are shared again",
                extra={"fields": {"rate_limit_storage": self.health()}})


def caller_key() -> str:
    """The per-caller bucket: of the issuer and subject of the JWT the middleware verified."""
    return g.caller.key


def _counted_breach(limit: RequestLimit) -> None:
    """flask-limiter's on_breach: the refusal goes on as it is, and is counted by its scope (the
    last of the key's parts: ip, user, or a route's)."""
    metrics.rate_limited(limit.request_args[-1])
