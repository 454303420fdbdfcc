"""The HTTP contracts, one module per product, and the request plumbing around them."""
from __future__ import annotations

from flask import Flask

from . import chat, docs, generic, health, rtc, rtm

# Served by api/front.py; Flask serves the operational blueprints.
TOKEN_ROUTES = (*rtc.routes, *rtm.routes, *chat.routes, *generic.routes)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
