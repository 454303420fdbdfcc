"""The application factory: settings, extensions and blueprints, assembled once per process."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask, Response
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

import api
from api import errors, metrics, observability
from api.issue import SIGNER_EXTENSION, Signer
from api.limits import RateLimits
from auth import Auth
from config.pinned import Configuration, pinned, read_configuration
from config.settings import Settings, settings_from_environment


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

    app = Flask(__name__, static_folder=None)  # no static files: and no route flask-limiter would exempt
    app.json.sort_keys = False  # answers keep the field order of the servers they stand in for
    # An empty path segment is a value in agora-token-service's routes (/rtc/c/publisher/uid//
    # is uid 0; api/__init__.py's SegmentConverter), not a typo for one slash to redirect to.
    app.url_map.merge_slashes = False
    app.config.from_mapping(settings.as_flask_config())
    app.config.update(overrides)
    app.extensions["settings"] = settings  # read by the dev-jwt command (auth/dev.py)

    observability.init_app(app)  # first: its access line is written after every other hook ran
    if settings.metrics_enabled:
        metrics.init_app(app)
    if auth.verifier.jwks is not None:
        auth.verifier.jwks.on_fetch = metrics.jwks_fetched
    errors.init_app(app)
    RateLimits(app, settings)
    CORS(app)  # from the CORS_* keys config/settings.py fills in
    app.after_request(_vary_on_origin)
    auth.init_app(app)
    app.extensions[SIGNER_EXTENSION] = Signer(settings.app_id, settings.app_certificate)
    api.register_blueprints(app)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)

    from auth.dev import register_dev_commands

    register_dev_commands(app)
    return app


def _vary_on_origin(response: Response) -> Response:
    """Every answer depends on Origin (CORS), so caches must key on it, whatever flask-cors decided."""
    headers = response.headers
    if "Vary" not in headers:
        headers["Vary"] = "Origin"  # the usual case: no header set to parse and write back
    else:
        response.vary.add("Origin")
    return response
