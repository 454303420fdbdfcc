"""Every setting the service reads: its default and parsing, in one place. The names live in
``names``; where the variables come from (environment, ``.env`` file, demo) in ``environment``.

``settings_from_environment()`` validates everything at start-up and raises ``ConfigError`` naming the
setting at fault.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, overload

from tokens import MAX_EXPIRE

from .cors import flask_cors_config, parse_origins

from .environment import truthy
from .names import (
    APP_CERTIFICATE, APP_ID, CORS_ALLOW_ORIGIN, DEFAULT_EXPIRE, DEMO_MODE, JWT_ALGORITHMS, JWT_AUDIENCE,
    JWT_ISSUER, JWT_JWKS_CACHE_TTL, JWT_JWKS_COOLDOWN, JWT_JWKS_STALE_TTL, JWT_JWKS_TIMEOUT, JWT_JWKS_URL,
    JWT_LEEWAY, JWT_PUBLIC_KEY, JWT_SECRET, LOG_LEVEL, MAX_BODY_BYTES, METRICS_ENABLED, POLICY_FILE, PORT,
    RATE_LIMIT_IPV6_PREFIX, RATE_LIMIT_PER_IP, RATE_LIMIT_PER_USER, RATELIMIT_FLAGS,
    RATELIMIT_HEADER_RETRY_AFTER_VALUE, RATELIMIT_KEY_PREFIX, RATELIMIT_PREFIX, RATELIMIT_SETTINGS,
    RATELIMIT_STORAGE_OPTIONS, RATELIMIT_STORAGE_URI, RATELIMIT_STRATEGY, SERVER_PORT, TRUSTED_PROXIES,
    WEB_CONCURRENCY, ConfigError,
)

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Settings:
    app_id: str
    app_certificate: str = field(repr=False)
    cors_allow_origins: tuple[str, ...] = ("*",)
    default_expire: int = 3600
    port: int = 8080
    policy_file: str | None = None
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_jwks_url: str | None = None
    jwt_algorithms: tuple[str, ...] = ()
    jwt_issuer: tuple[str, ...] = ()
    jwt_audience: tuple[str, ...] = ()
    jwt_leeway: int = 30
    jwt_jwks_cooldown: float = 5.0
    jwt_jwks_cache_ttl: float = 300.0
    jwt_jwks_timeout: float = 2.0
    jwt_jwks_stale_ttl: float = 3600.0
    rate_limit_per_user: str = "60/minute"
    rate_limit_per_ip: str = "600/minute"
    rate_limit_ipv6_prefix: int = 64
    trusted_proxies: int = 0
    web_concurrency: int | None = None  # unset: gunicorn.conf.py's default
    max_body_bytes: int = 4096
    log_level: str = "INFO"
    metrics_enabled: bool = True
    demo: bool = False
    ratelimit: Mapping[str, Any] = field(default_factory=dict, repr=False)  # a Redis URI may hold a password

    def as_flask_config(self) -> dict:
        """The settings as Flask config keys (upper case), flask-limiter's ``RATELIMIT_*`` and
        flask-cors' ``CORS_*``. Secrets stay out: ``app.config`` is printed by debuggers and
        captured by error reporters. So does the rate limit storage (its URI and options may
        hold a password), which api/limits.py hands to flask-limiter's constructor instead."""
        out = {f.name.upper(): getattr(self, f.name) for f in fields(self)
               if f.name not in SECRET_FIELDS and f.name != "ratelimit"}
        out.update((k, v) for k, v in self.ratelimit.items() if k not in RATELIMIT_STORAGE)
        out.update(flask_cors_config(self.cors_allow_origins))
        return out


SECRET_FIELDS = frozenset(f.name for f in fields(Settings) if not f.repr)
RATELIMIT_STORAGE = (RATELIMIT_STORAGE_URI, RATELIMIT_STORAGE_OPTIONS)  # may hold a password


def memory_storage_warning(workers: int) -> str:
    return (f"RATELIMIT_STORAGE_URI is memory:// with {workers} workers: each worker counts on its own, "
            f"so every limit lets through up to {workers} times as much; use redis://")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return value in ("1", "true", "yes", "on")


def _number(env: Mapping[str, str], name: str, default, lo, hi, kind: type, what: str):
    """``env[name]`` read as ``kind`` (int or float) within lo…hi, or ``default`` when unset."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


# None only when None is the default and the variable is unset.
@overload
def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int: ...
@overload
def _int(env: Mapping[str, str], name: str, default: None, lo: int, hi: int) -> int | None: ...
def _int(env: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    return _number(env, name, default, lo, hi, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _number(env, name, default, lo, hi, float, "a number of seconds")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())


def _hex32(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (32 hexadecimal characters from Agora Console)")
    if not _HEX32.fullmatch(value):
        raise ConfigError(f"{name} must be 32 hexadecimal characters")
    return value


def _limit(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    from limits import parse_many  # the parser flask-limiter counts with: same syntax, same errors

    try:
        parse_many(value)
    except ValueError as e:
        raise ConfigError(f"{name}: {e}") from None
    return value


def _without_password(uri: object) -> object:
    """``uri`` with the password of its user part replaced, for an error message."""
    if isinstance(uri, str) and "@" in uri and "://" in uri:
        scheme, _, rest = uri.partition("://")
        user, _, host = rest.rpartition("@")
        return f"{scheme}://{user.partition(':')[0]}:***@{host}" if ":" in user else uri
    return uri


def _ratelimit(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``RATELIMIT_*`` settings, typed, with the storage defaulting to memory://."""
    from limits.storage import SCHEMES
    from limits.strategies import STRATEGIES

    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(RATELIMIT_PREFIX):
            continue
        if name not in RATELIMIT_SETTINGS:
            raise ConfigError(f"{name} is not a setting of this service; the rate limiter reads "
                              f"{', '.join(RATELIMIT_SETTINGS)}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    for name in RATELIMIT_FLAGS:
        if not isinstance(out.get(name, False), bool):
            raise ConfigError(f"{name} must be true or false, got {env[name]!r}")
    if not isinstance(out.get(RATELIMIT_STORAGE_OPTIONS, {}), dict):
        raise ConfigError(f'{RATELIMIT_STORAGE_OPTIONS} must be a JSON object like {{"socket_timeout": 0.5}}')
    if out.get(RATELIMIT_STRATEGY, "fixed-window") not in STRATEGIES:
        raise ConfigError(f"{RATELIMIT_STRATEGY} must be one of {', '.join(STRATEGIES)}")
    if out.get(RATELIMIT_HEADER_RETRY_AFTER_VALUE, "delta-seconds") not in ("delta-seconds", "http-date"):
        raise ConfigError(f"{RATELIMIT_HEADER_RETRY_AFTER_VALUE} must be delta-seconds or http-date")
    out[RATELIMIT_KEY_PREFIX] = str(out.get(RATELIMIT_KEY_PREFIX, ""))
    uri = out.setdefault(RATELIMIT_STORAGE_URI, "memory://")
    if not isinstance(uri, str) or uri.partition("://")[0] not in SCHEMES or uri.startswith("async+"):
        raise ConfigError(f"{RATELIMIT_STORAGE_URI} must be memory://, redis://host:port or another "
                          f"storage the limits library supports, got {_without_password(uri)!r}")
    return out


def settings_from_environment(env: Mapping[str, str]) -> Settings:
    """Parse and validate the settings from already-resolved variables."""
    is_demo = truthy(env.get(DEMO_MODE))

    port_name = PORT if PORT in env else SERVER_PORT
    algorithms = tuple(a.upper() for a in _list(env, JWT_ALGORITHMS))

    policy_file = env.get(POLICY_FILE)
    if policy_file and not Path(policy_file).is_file():
        raise ConfigError(f"{POLICY_FILE}: no such file: {policy_file}")

    log_level = env.get(LOG_LEVEL, "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{LOG_LEVEL} must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    return Settings(
        app_id=_hex32(env, APP_ID),
        app_certificate=_hex32(env, APP_CERTIFICATE),
        cors_allow_origins=parse_origins(_list(env, CORS_ALLOW_ORIGIN)),
        default_expire=_int(env, DEFAULT_EXPIRE, 3600, 1, MAX_EXPIRE),
        port=_int(env, port_name, 8080, 1, 65535),
        policy_file=policy_file,
        jwt_secret=env.get(JWT_SECRET),
        jwt_public_key=env.get(JWT_PUBLIC_KEY),
        jwt_jwks_url=env.get(JWT_JWKS_URL),
        jwt_algorithms=algorithms,
        jwt_issuer=_list(env, JWT_ISSUER),
        jwt_audience=_list(env, JWT_AUDIENCE),
        jwt_leeway=_int(env, JWT_LEEWAY, 30, 0, 3600),
        jwt_jwks_cooldown=_float(env, JWT_JWKS_COOLDOWN, 5.0, 0.0, 3600.0),
        jwt_jwks_cache_ttl=_float(env, JWT_JWKS_CACHE_TTL, 300.0, 1.0, 86_400.0),
        jwt_jwks_timeout=_float(env, JWT_JWKS_TIMEOUT, 2.0, 0.1, 30.0),
        jwt_jwks_stale_ttl=_float(env, JWT_JWKS_STALE_TTL, 3600.0, 0.0, 86_400.0),
        rate_limit_per_user=_limit(env, RATE_LIMIT_PER_USER, "60/minute"),
        rate_limit_per_ip=_limit(env, RATE_LIMIT_PER_IP, "600/minute"),
        rate_limit_ipv6_prefix=_int(env, RATE_LIMIT_IPV6_PREFIX, 64, 32, 128),
        trusted_proxies=_int(env, TRUSTED_PROXIES, 0, 0, 10),
        web_concurrency=_int(env, WEB_CONCURRENCY, None, 1, 1024),
        max_body_bytes=_int(env, MAX_BODY_BYTES, 4096, 256, 1 << 20),
        log_level=log_level,
        metrics_enabled=_flag(env, METRICS_ENABLED, True),
        demo=is_demo,
        ratelimit=_ratelimit(env),
    )
