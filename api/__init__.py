"""The HTTP contracts, one blueprint per product, and the request plumbing around them.

Token blueprints sit behind the JWT middleware (api/guard.py); the operational ones (health,
the OpenAPI document) are open to everyone.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter

from . import chat, docs, generic, health, rtc, rtm

TOKEN_BLUEPRINTS = (rtc.bp, rtm.bp, chat.bp, generic.bp)


class SegmentConverter(BaseConverter):
    """``<segment:name>``: one path segment that may be empty. agora-token-service reads an
    empty ``:uid`` as uid 0 (``/rtc/c/publisher/uid//``) and refuses an empty ``:rtmuid`` with
    a 400, where Flask's default converter would not match at all (404)."""

    regex = "[^/]*"


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["segment"] = SegmentConverter
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    for bp in TOKEN_BLUEPRINTS:
        app.register_blueprint(bp)
