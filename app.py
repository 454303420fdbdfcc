"""The application factory, in flaskr's shape: ``create_app(test_config=None)``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from api.extension import TokenServer
from config.pinned import Configuration, read_configuration


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service from a configuration: the variables the README lists, by name
    (``APP_ID``, ``POLICY_FILE``, ``RATE_LIMIT_PER_USER``…; ``POLICY_TEXT`` stands in for the
    policy file's content). A test's configuration may also carry Flask's own keys
    (``TESTING``); one read from the environment never does, so that a variable a platform sets
    for itself (``DEBUG=0``) cannot switch Flask's modes as an unparsed string.

    Without ``test_config``, the configuration is the environment's, with the ``.env`` file
    (config/pinned.py's ``read_configuration``); wsgi.py passes the one the gunicorn master
    validated. Raises ``ConfigError`` naming the setting at fault.
    """
    configuration = read_configuration() if test_config is None else test_config
    server = TokenServer.from_configuration(configuration)

    app = Flask(__name__, static_folder=None)  # no static files: and no route flask-limiter would exempt
    # An empty path segment is a value in agora-token-service's routes (/rtc/c/publisher/uid//
    # is uid 0; api/__init__.py's SegmentConverter), not a typo for one slash to redirect to.
    app.url_map.merge_slashes = False
    if not isinstance(configuration, Configuration):  # a test's, not the environment's
        app.config.from_mapping({k: v for k, v in configuration.items() if k in Flask.default_config})
    server.init_app(app)
    return app
