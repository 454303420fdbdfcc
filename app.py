"""The application factory: settings, extensions and blueprints, assembled once per process."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import api
from api import errors, observability
from api.cors import Cors
from api.front import Front, Service
from api.limits import RateLimits, warn_if_unshared
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

    app = Flask(__name__)
    app.config.from_mapping(settings.as_flask_config())
    app.config.update(overrides)
    app.extensions["settings"] = settings

    observability.configure_logging(app.config.get("LOG_LEVEL", "INFO"))
    errors.init_app(app)
    auth.init_app(app)
    api.register_blueprints(app)

    limits = RateLimits(settings.rate_limit_per_ip, settings.rate_limit_per_user, settings.ratelimit)
    warn_if_unshared(limits, settings.web_concurrency or 1)
    app.extensions["rate_limits"] = limits
    app.extensions.setdefault("health_checks", {})["rate_limit_storage"] = limits.health
    service = Service(auth=auth, limits=limits, cors=Cors(settings.cors_allow_origins),
                      app_id=settings.app_id, app_certificate=settings.app_certificate,
                      default_expire=settings.default_expire, max_body_bytes=settings.max_body_bytes)
    app.wsgi_app = app.extensions["front"] = Front(service, api.TOKEN_ROUTES, app.wsgi_app)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)

    from auth.dev import register_dev_commands

    register_dev_commands(app)
    return app
