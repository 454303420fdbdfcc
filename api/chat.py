"""Chat contracts: agora-token-service's ``/chat/...`` and Agora's Chat token server guide."""
from __future__ import annotations

from flask import jsonify

from auth.models import TokenRequest

from . import params
from .guard import ProtectedBlueprint
from .issue import issue

bp = ProtectedBlueprint("chat", __name__)


def chat_request(user, expire, name: str = "chat user id") -> TokenRequest:
    """A user token for ``user``, or an app token when ``user`` is None."""
    if user is None:
        return TokenRequest("chat", expire, app=True)
    return TokenRequest("chat", expire, user=params.chat_user(user, name))


def _answer(key: str, want: TokenRequest):
    (issued,) = issue(want)
    return jsonify({key: issued.token, "expire": issued.expire}), issued.headers


@bp.get("/chat/app/", strict_slashes=False)
def chat_app_token():
    """agora-token-service: a Chat app token → ``{"chatToken"}``."""
    return _answer("chatToken",
                   chat_request(None, params.query_expiry()))


@bp.get("/chat/account/<chat_id>/", strict_slashes=False)
def chat_user_token(chat_id):
    """agora-token-service: a Chat user token for ``chatid`` → ``{"chatToken"}``."""
    return _answer("chatToken",
                   chat_request(chat_id, params.query_expiry()))


@bp.post("/generate-user-token")
def generate_user_token():
    """Chat guide: ``{"user_uuid", "expire"}`` → ``{"token"}``."""
    body = params.json_body()
    user = params.chat_user(body.get("user_uuid"), "user_uuid")
    return _answer("token", chat_request(user, params.expire(body.get("expire"))))


@bp.post("/generate-app-token")
def generate_app_token():
    """Chat guide: ``{"expire"}`` → ``{"token"}`` (an app token)."""
    body = params.json_body()
    return _answer("token", chat_request(None, params.expire(body.get("expire"))))
