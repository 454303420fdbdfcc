"""The service as one Flask extension, in flask-limiter's shape: build a ``TokenServer``, then
``init_app(app)``; ``token_server()`` finds it again, under one key of ``app.extensions``.

It owns what every request reads: the settings, ``Auth`` (the JWT verifier and the operator's
policy), the ``Signer`` (the Agora credentials), the rate limits (flask-limiter's ``Limiter``,
also reachable as ``token_server().limiter`` for ``@limiter.limit(...)`` on an operator's
routes) and the checks /healthz reports. ``init_app`` holds the one list of what a request
meets, in order.

What a request carries on ``flask.g``, and who writes it: ``started`` (the clock,
api/observability.py), ``caller`` (the verified ``Identity``, api/guard.py), ``log_lines``
(audit lines waiting for the access line, api/observability.py), ``retry_after`` (an error's
own Retry-After, api/error_handlers.py) and ``rate_limit_counts`` (the counts the Redis
storage answered, api/storages.py).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from flask import Flask, Response, current_app
from flask.json.provider import DefaultJSONProvider
from flask.sansio.app import App
from flask_cors import CORS
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

import tokens
from auth import Auth
from auth.dev import register_dev_commands
from auth.models import PolicyDecision, TokenRequest, Uid
from config.pinned import POLICY_TEXT
from config.settings import Settings, settings_from_environment
from exceptions import BadRequest

from . import error_handlers, metrics, observability
from .limits import RateLimits

EXTENSION = "agora_token_server"  # the service's one key in app.extensions


_SEPARATORS = (",", ":")
_COMPACT: dict[str, Any] = {"separators": _SEPARATORS}  # what jsonify passes out of debug mode


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keeping the answers' field order (that of the servers they stand in for).

    ``json.dumps`` with any keyword argument builds a new encoder on every call; the one
    ``jsonify`` uses on every answer is built once, for as long as the provider's settings
    (``default``, ``ensure_ascii``, ``sort_keys``) are those it was built with.
    """

    sort_keys = False

    def __init__(self, app: Flask):
        super().__init__(app)
        self._built_for = (self.default, self.ensure_ascii, self.sort_keys)
        self._compact = json.JSONEncoder(default=self.default, ensure_ascii=self.ensure_ascii,
                                         sort_keys=self.sort_keys, separators=_SEPARATORS).encode

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs == _COMPACT and (self.default, self.ensure_ascii, self.sort_keys) == self._built_for:
            return self._compact(obj)
        return super().dumps(obj, **kwargs)


@dataclass(frozen=True)
class Signer:
    """The Agora project's credentials, kept out of ``app.config`` and out of every repr."""

    app_id: str
    app_certificate: str = field(repr=False)

    def build(self, want: TokenRequest, decision: PolicyDecision) -> str:
        app_id, cert, life = self.app_id, self.app_certificate, decision.expire
        # The casts: each contract sets the fields its service needs (auth/models.py); were one
        # None all the same, the builder's own checks would refuse it as a TokenError, below.
        try:
            if want.service == "rtc":
                return tokens.build_rtc_token(app_id, cert, cast(str, want.channel), cast(Uid, want.uid),
                                              cast(tokens.Role, want.role), life, life)
            if want.service == "rtm":
                return tokens.build_rtm_token(app_id, cert, cast(str, want.user), life)
            if want.app:
                return tokens.build_chat_app_token(app_id, cert, life)
            return tokens.build_chat_user_token(app_id, cert, cast(str, want.user), life)
        except tokens.TokenError as e:  # the contracts validate first; this is the backstop
            raise BadRequest(str(e)) from None


class TokenServer:
    """The settings, the JWT verifier and policy, the signer, the rate limits and the health
    checks of one app; ``init_app`` wires them into it (one app per ``TokenServer``: the rate
    limits' state, and the storage's health, are that app's)."""

    def __init__(self, settings: Settings, auth: Auth, app: Flask | None = None):
        self.settings = settings
        self.auth = auth
        self.signer = Signer(settings.app_id, settings.app_certificate)
        self.rate_limits = RateLimits(settings)
        self._metrics = settings.metrics_enabled
        self._app: Flask | None = None
        # /healthz reports each by name ("ok" or "degraded"); an operator may add their own.
        self.health_checks: dict[str, Callable[[], str]] = {"rate_limit_storage": self.rate_limits.health}
        if app is not None:
            self.init_app(app)

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, str]) -> TokenServer:
        """Parse and validate a whole configuration (config/pinned.py's mapping): settings,
        JWT keys and policy. Raises ``ConfigError`` naming what is wrong."""
        settings = settings_from_environment(configuration)
        auth = Auth.from_settings(settings, configuration.get(POLICY_TEXT), on_jwks_fetch=metrics.jwks_fetched)
        return cls(settings, auth)

    @property
    def limiter(self) -> Limiter:
        """The app's flask-limiter ``Limiter`` (after ``init_app``)."""
        limiter = self.rate_limits.limiter
        if limiter is None:
            raise RuntimeError("the TokenServer is not initialized on an app yet")
        return limiter

    def init_app(self, app: Flask) -> None:
        """Wire the service into ``app``.

        A request meets, in this order:

        1. ``observability.request_started``: its clock, for the access line and the latency
           histogram (a before_request hook, registered first so it runs first);
        2. flask-limiter's before_request: the per-address limit, on every request (401s,
           404s and preflights too), before any JWT is looked at;
        3. on the token blueprints, the JWT middleware (api/guard.py): 401 without a valid JWT;
        4. the per-caller limit, wrapped around each protected view (api/guard.py), with any
           ``@limiter.limit`` on the view and limits on its blueprint;
        5. the view, or the error handler that turns a refusal into JSON (api/error_handlers.py);
        6. flask-cors' after_request: the CORS headers, on errors and 429s too;
        7. flask-limiter's after_request: ``X-RateLimit-*`` and ``Retry-After``;
        8. ``_finish``, our steps on every answer, in the order it lists.

        Flask runs after_request hooks in the reverse order of registration: ``_finish`` is
        registered before the libraries' hooks so that it runs after them, on their headers.
        """
        if self._app is not None:
            raise RuntimeError("a TokenServer serves one app: build one per app")
        self._app = app
        settings = self.settings
        app.extensions[EXTENSION] = self
        # The settings as config keys, flask-limiter's RATELIMIT_* and flask-cors' CORS_* among
        # them, for the libraries to read as they document; secrets stay out.
        app.config.from_mapping(settings.as_flask_config())
        observability.configure_logging(settings.log_level)
        app.json = JSONProvider(app)  # Flask's JSON, keeping the answers' field order
        app.before_request(observability.request_started)  # 1
        app.after_request(self._finish)  # 8
        self.rate_limits.init_app(app)  # 2 and 7
        CORS(app)  # 6, from the CORS_* keys config/settings.py fills in
        error_handlers.init_app(app)  # 5
        # Imported here, not above: api/__init__.py imports the views, which import this module
        # for token_server(), so a module-level import would be a cycle.
        from . import register_blueprints

        register_blueprints(app)  # 3 and 4: ProtectedBlueprint.register wraps each view
        if self._metrics:
            app.register_blueprint(metrics.bp)
            metrics.report_every_rejection_reason()
        register_dev_commands(app, settings)
        if settings.trusted_proxies:  # outside every hook: the client address they all read
            # Flask's documented way to wrap the app in a middleware; mypy takes it for a method.
            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]

    def _finish(self, response: Response) -> Response:
        """Our after_request steps, in order, once the libraries' hooks have run."""
        error_handlers.retry_after_as_meant(response)  # after flask-limiter wrote its Retry-After
        _vary_on_origin(response)
        self.rate_limits.note_storage_health()  # the request that sees a change logs it
        if self._metrics:
            metrics.observe(response)
        observability.finish(response)  # last: the access line records the final status
        return response


def _vary_on_origin(response: Response) -> None:
    """Every answer depends on Origin (CORS), so caches must key on it, whatever flask-cors decided."""
    headers = response.headers
    if "Vary" not in headers:
        headers["Vary"] = "Origin"  # the usual case: no header set to parse and write back
    else:
        response.vary.add("Origin")


def token_server(app: App | None = None) -> TokenServer:
    """The ``TokenServer`` of ``app`` (the current app by default)."""
    return (app or current_app).extensions[EXTENSION]
