"""Liveness and readiness: open to everyone, never rate-limited per user."""
from __future__ import annotations

from flask import Blueprint, jsonify

from .extension import token_server

bp = Blueprint("health", __name__)


@bp.get("/ping")
def ping():
    """agora-token-service's liveness check."""
    return jsonify(message="pong")


@bp.get("/healthz")
def healthz():
    """200 when this process can serve: which app id it serves (never the certificate)."""
    server = token_server()
    report = {name: check() for name, check in server.health_checks.items()}
    return jsonify(status="ok", app_id=server.settings.app_id, demo=server.settings.demo, **report)
