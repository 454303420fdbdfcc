"""The application factory, in flaskr's shape: ``create_app(test_config=None)``."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from api.extension import TokenServer
from config.pinned import read_configuration

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


class TokenServerFlask(Flask):
    json_provider_class = JSONProvider


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service from a configuration: the variables the README lists, by name
    (``APP_ID``, ``POLICY_FILE``, ``RATE_LIMIT_PER_USER``…; ``POLICY_TEXT`` stands in for the
    policy file's content), plus any of Flask's own keys (``TESTING``).

    Without ``test_config``, the configuration is the environment's, with the ``.env`` file
    (config/pinned.py's ``read_configuration``); wsgi.py passes the one the gunicorn master
    validated. Raises ``ConfigError`` naming the setting at fault.
    """
    configuration = read_configuration() if test_config is None else test_config
    server = TokenServer.from_configuration(configuration)

    app = TokenServerFlask(__name__, static_folder=None)  # no static files: and no route flask-limiter would exempt
    # An empty path segment is a value in agora-token-service's routes (/rtc/c/publisher/uid//
    # is uid 0; api/__init__.py's SegmentConverter), not a typo for one slash to redirect to.
    app.url_map.merge_slashes = False
    app.config.from_mapping({k: v for k, v in configuration.items() if k in Flask.default_config})
    server.init_app(app)
    return app
