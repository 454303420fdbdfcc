"""The HTTP contracts, one blueprint per product, and the request plumbing around them.

Token blueprints sit behind the JWT middleware (api/guard.py); the operational ones (health,
the OpenAPI document) are open to everyone.
"""
from __future__ import annotations

from flask import Flask

from . import chat, docs, generic, health, rtc, rtm

TOKEN_BLUEPRINTS = (rtc.bp, rtm.bp, chat.bp, generic.bp)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    for bp in TOKEN_BLUEPRINTS:
        app.register_blueprint(bp)
