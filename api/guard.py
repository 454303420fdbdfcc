"""The JWT-checking middleware in front of every token blueprint.

A ``ProtectedBlueprint`` is a Flask blueprint whose routes only a verified caller reaches:

- its ``before_request`` verifies the bearer JWT (401 otherwise) and puts the caller on
  ``flask.g.caller``, before any of its views can run;
- when it is registered on an app, each of its views is wrapped in the app's per-caller limit
  (flask-limiter's ``shared_limit``), so the caller is counted right after authentication,
  once per request, together with any ``@limiter.limit(...)`` the view carries and any limit
  declared on the blueprint.

An operator's own blueprint goes behind the same middleware by being one::

    bp = ProtectedBlueprint("reports", __name__)

Preflights (``OPTIONS``) pass: a browser sends them without credentials, and flask-cors
answers them (Flask's automatic ``OPTIONS`` calls no view, so no caller is counted either).
"""
from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, g, request
from flask.sansio.app import App
from flask.typing import RouteCallable

from auth import Identity
from exceptions import Unauthorized

from . import metrics
from .extension import token_server

# The mark on a view already wrapped in the per-caller limit (a blueprint registered twice
# under two names lists its endpoints under both).
COUNTS_THE_CALLER = "counts_the_caller"


def authenticate_caller() -> None:
    """Verify the request's JWT and remember the caller."""
    rule = request.url_rule
    # Read as Flask's dispatch_request reads it: add_url_rule sets it on the rule, untyped.
    if request.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
        return  # Flask answers it (no view runs); a view that handles OPTIONS itself is protected
    try:
        g.caller = token_server().auth.authenticate(request.headers.get("Authorization"))
    except Unauthorized as e:
        metrics.jwt_rejected(e.reason)
        raise


class ProtectedBlueprint(Blueprint):
    """A blueprint behind the JWT middleware and the per-caller limit."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.before_request(authenticate_caller)

    def register(self, app: App, options: dict[str, Any]) -> None:
        super().register(app, options)
        # Wrapped here, per app, because each app has its own Limiter. A limit on a view
        # function is flask-limiter's own way: the view is marked, so its before_request leaves
        # the blueprint's limits to the view's pass, which runs after authentication.
        per_caller = token_server(app).rate_limits.per_caller
        prefixes = tuple(f"{name}." for name, bp in app.blueprints.items() if bp is self)
        for endpoint, view in list(app.view_functions.items()):
            if endpoint.startswith(prefixes) and not getattr(view, COUNTS_THE_CALLER, False):
                # The view, limited, as it was typed (Callable[P, R] -> Callable[P, R]); mypy solves
                # R over RouteCallable's union as one callable that may return either.
                wrapped = cast(RouteCallable, per_caller(view))
                setattr(wrapped, COUNTS_THE_CALLER, True)
                app.view_functions[endpoint] = wrapped


def caller() -> Identity:
    """The verified caller of this request (the middleware ran before any protected view)."""
    return g.caller
