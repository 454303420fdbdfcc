"""The JWT-checking middleware in front of every token blueprint.

``protect(blueprint)`` registers a ``before_request`` on the blueprint that verifies the
bearer JWT (401 otherwise), puts the caller on ``flask.g.caller`` and counts them against the
per-caller limit, before any of the blueprint's views can run. Blueprints of an operator's own
are put behind the same middleware the same way::

    bp = Blueprint("reports", __name__)
    protect(bp)

Preflights (``OPTIONS``) pass: a browser sends them without credentials, and flask-cors
answers them.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, request

from auth import Identity
from errors import Unauthorized

from . import metrics
from .limits import rate_limits

AUTH_EXTENSION = "auth"


def authenticate_caller() -> None:
    """Verify the request's JWT, remember the caller, count them."""
    if request.method == "OPTIONS":
        return
    try:
        g.caller = current_app.extensions[AUTH_EXTENSION].authenticate(request.headers.get("Authorization"))
    except Unauthorized as e:
        metrics.jwt_rejected(e.reason)
        raise
    rate_limits().count_caller()


def protect(blueprint: Blueprint) -> Blueprint:
    """Put ``blueprint``'s routes behind the JWT middleware; returns it."""
    blueprint.before_request(authenticate_caller)
    return blueprint


def caller() -> Identity:
    """The verified caller of this request (the middleware ran before any protected view)."""
    return g.caller
