"""The application factory: settings, extensions and blueprints, assembled once per process."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

import api
from api import errors, limits, observability
from auth import Auth
from config.pinned import Configuration, pinned, read_configuration
from config.settings import Settings, settings_from_environment

EXPOSED_HEADERS = ["Retry-After", "X-Request-Id", "X-Token-Expire", "X-RateLimit-Limit",
                   "X-RateLimit-Remaining", "X-RateLimit-Reset"]


def configure(configuration: Configuration) -> tuple[Settings, Auth]:
    """Validate a whole configuration: settings, JWT keys and policy. Raises ``ConfigError``."""
    settings = settings_from_environment(configuration.environment)
    return settings, Auth.from_settings(settings, configuration.policy_text)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service.

    The configuration is the one the gunicorn master pinned (see ``config/pinned.py``), else
    the environment's. ``test_config`` may carry ``SETTINGS`` (a ``Settings``) or ``ENV`` (a
    mapping read instead of the process environment); its other keys override Flask config last.
    """
    overrides = dict(test_config or {})
    if "SETTINGS" in overrides:
        settings: Settings = overrides.pop("SETTINGS")
        auth = Auth.from_settings(settings)
    else:
        environ = overrides.pop("ENV", None)
        settings, auth = configure(pinned() if environ is None and pinned() else read_configuration(environ))

    app = Flask(__name__)
    app.config.from_mapping(settings.as_flask_config())
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.config.update(overrides)
    app.extensions["settings"] = settings

    observability.init_app(app)
    errors.init_app(app)
    CORS(app, origins=list(settings.cors_allow_origins), allow_headers=["Authorization", "Content-Type"],
         expose_headers=EXPOSED_HEADERS, methods=["GET", "POST", "OPTIONS"], max_age=600,
         supports_credentials=False, vary_header=True)

    @app.after_request
    def _vary_on_origin(response):
        if "Vary" in response.headers:
            response.vary.add("Origin")
        else:  # the usual case: set it without parsing a header set
            response.headers["Vary"] = "Origin"
        return response

    auth.init_app(app)
    limits.init_app(app)
    api.register_blueprints(app)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)

    from auth.dev import register_dev_commands

    register_dev_commands(app)
    return app
