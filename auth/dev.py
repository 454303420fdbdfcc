"""Development helpers: ``flask --app app dev-jwt`` signs a JWT for the demo configuration."""
from __future__ import annotations

import time

import click
import jwt
from flask import Flask

from config.settings import Settings


def make_dev_jwt(secret: str, algorithm: str, subject: str, *, groups: list[str] | None = None,
                 uid: str | None = None, issuer: str | None = None, audience: str | None = None,
                 lifetime: int = 3600) -> str:
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + lifetime}
    if groups:
        claims["groups"] = groups
    if uid:
        claims["agora_uid"] = uid
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=algorithm)


def register_dev_commands(app: Flask, settings: Settings) -> None:
    """``flask dev-jwt``, signing with ``settings``' JWT_SECRET."""
    @app.cli.command("dev-jwt")
    @click.option("--sub", default="alice", show_default=True, help="subject (user id)")
    @click.option("--groups", default="", help="comma or space separated groups")
    @click.option("--uid", default=None, help="agora_uid claim (the caller's own uid)")
    @click.option("--lifetime", default=3600, show_default=True, help="seconds")
    def dev_jwt(sub: str, groups: str, uid: str | None, lifetime: int) -> None:
        """Print a JWT signed with this configuration's JWT_SECRET (development only)."""
        algorithms = [a for a in settings.jwt_algorithms if a.startswith("HS")] or ["HS256"]
        if not settings.jwt_secret:
            raise click.ClickException("dev-jwt needs JWT_SECRET (the demo configuration has one)")
        token = make_dev_jwt(settings.jwt_secret, algorithms[0], sub,
                             groups=[g for g in groups.replace(",", " ").split() if g], uid=uid,
                             issuer=(settings.jwt_issuer or (None,))[0],
                             audience=(settings.jwt_audience or (None,))[0], lifetime=lifetime)
        click.echo(token)
