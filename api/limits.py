"""Rate limits (per user and per client IP): see the README's "Rate limits" section."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Placeholder until the limits land."""
