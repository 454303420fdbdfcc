"""The application factory: settings, extensions and blueprints, assembled once per process."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

import api
from api import errors, limits, observability
from auth import Auth
from config.settings import Settings, load_settings

EXPOSED_HEADERS = ["Retry-After", "X-Request-Id", "X-Token-Expire", "X-RateLimit-Limit",
                   "X-RateLimit-Remaining", "X-RateLimit-Reset"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service.

    ``test_config`` may carry ``SETTINGS`` (a ``Settings``) or ``ENV`` (a mapping read instead
    of the process environment); its other keys override Flask config last.
    """
    overrides = dict(test_config or {})
    settings: Settings = overrides.pop("SETTINGS", None) or load_settings(overrides.pop("ENV", None))

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
        response.vary.add("Origin")
        return response

    Auth.from_settings(settings).init_app(app)
    limits.init_app(app)
    api.register_blueprints(app)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)

    from auth.dev import register_dev_commands

    register_dev_commands(app)
    return app
