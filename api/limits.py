"""Rate limits: per client IP on every request, per user (issuer + subject) on every token route.

flask-limiter counts, in the storage ``RATELIMIT_STORAGE_URI`` names: memory:// counts in one
process, Redis shares the counters across workers and machines. A request meets, in order:

1. the per-IP limit (``RATE_LIMIT_PER_IP``), in flask-limiter's ``before_request``: every
   request counts (401s, 404s and preflights too), before any JWT signature is checked;
2. authentication, on token routes only (401), so no anonymous request touches a user's bucket;
3. the per-user limit (``RATE_LIMIT_PER_USER``), one bucket per caller across all token routes
   (preflights never reach it; /ping and /healthz are not token routes);
4. the view: parse, authorize, build.

A 429 is answered by api/errors.py like every other error; flask-limiter adds ``Retry-After`` and
``X-RateLimit-*``. When the storage is unreachable, each worker counts in its own memory until it
is back (flask-limiter's in-memory fallback), and /healthz says ``"rate_limit_storage": "degraded"``.
"""
from __future__ import annotations

from flask import Flask, request
from flask_limiter import ApplicationLimit, Limiter, RouteLimit
from limits.storage import MemoryStorage

from . import TOKEN_BLUEPRINTS
from .issue import identity
from .observability import app_log

# Our defaults for flask-limiter's settings; an operator's RATELIMIT_* value wins. The fallback
# catches any storage error (refused, timed out, READONLY, OOM): none becomes a 5xx.
DEFAULTS = {"RATELIMIT_HEADERS_ENABLED": True, "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True}
# redis-py waits 5 s by default; a limiter that waits that long is an outage of its own.
REDIS_TIMEOUTS = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}
_TOKEN_ROUTES = frozenset(bp.name for bp in TOKEN_BLUEPRINTS)


def _client_address() -> str:
    return request.remote_addr or "-"  # ProxyFix has already applied TRUSTED_PROXIES


def _caller() -> str:
    return identity().key  # cached on flask.g: authenticated just before the limit is counted


def _route() -> str:
    return request.endpoint or "-"  # an unrouted request (404, 405) still counts per IP


def _caller_checkpoint() -> None:
    """Calling the limiter-decorated version of this counts the caller's request."""


class _ParsedOnce:
    """A limit whose string is parsed at start-up: flask-limiter re-parses it on every request."""

    def __iter__(self):
        parsed = self.__dict__.get("_parsed")
        if parsed is None:
            parsed = self.__dict__["_parsed"] = tuple(super().__iter__())
        return iter(parsed)


class PerIP(_ParsedOnce, ApplicationLimit):
    pass


class PerCaller(_ParsedOnce, RouteLimit):
    pass


class StorageHealth:
    """``"ok"``, or ``"degraded"`` while this worker counts in memory; logged once per change."""

    def __init__(self, limiter: Limiter):
        self.limiter = limiter
        self.degraded = False

    def __call__(self) -> str:
        # flask-limiter keeps its fallback switch private; requirements.txt pins the version.
        return "degraded" if self.limiter._storage_dead else "ok"

    def log_change(self, _exc: BaseException | None = None) -> None:
        degraded = self.limiter._storage_dead
        if degraded != self.degraded:
            self.degraded = degraded
            app_log.warning(
                "rate limit storage unreachable: each worker counts in its own memory until it is back"
                if degraded else "rate limit storage is back: counters are shared again",
                extra={"fields": {"rate_limit_storage": self()}})


def init_app(app: Flask) -> None:
    """Both limits, in the order above, and the storage's health check."""
    config = app.config
    for name, value in DEFAULTS.items():
        config.setdefault(name, value)
    uri = config["RATELIMIT_STORAGE_URI"]
    if uri.startswith(("redis", "valkey")):
        options = config.get("RATELIMIT_STORAGE_OPTIONS", {})
        config["RATELIMIT_STORAGE_OPTIONS"] = {**REDIS_TIMEOUTS, **options}

    per_ip = PerIP(limit_provider=config["RATE_LIMIT_PER_IP"], scope="ip")
    limiter = Limiter(_client_address, application_limits=[per_ip], request_identifier=_route)
    limiter.init_app(app)
    # What limiter.shared_limit() builds, parsed once; the bucket is shared by all token routes.
    per_caller = PerCaller(limit_provider=config["RATE_LIMIT_PER_USER"], limiter=limiter,
                           key_function=_caller, shared=True, scope="user", override_defaults=False)
    count_caller = per_caller(_caller_checkpoint)

    @app.before_request
    def _limit_caller() -> None:
        if request.blueprint in _TOKEN_ROUTES and request.method != "OPTIONS":
            identity()
            count_caller()

    health = StorageHealth(limiter)
    app.teardown_request(health.log_change)
    app.extensions.setdefault("health_checks", {})["rate_limit_storage"] = health

    workers = config.get("WEB_CONCURRENCY") or 1
    if limiter.enabled and isinstance(limiter.storage, MemoryStorage) and workers > 1:
        app_log.warning(
            f"RATELIMIT_STORAGE_URI is memory:// with WEB_CONCURRENCY={workers}: each worker counts on "
            f"its own, so every limit lets through up to {workers} times as much; use redis://",
            extra={"fields": {"workers": workers}})
