"""Chat contracts: agora-token-service's ``/chat/...`` and Agora's Chat token server guide."""
from __future__ import annotations

from auth.models import TokenRequest

from . import params
from .issue import issue
from .routing import Answer, Request, Routes

routes = Routes("chat")


def chat_request(user, expire, name: str = "chat user id") -> TokenRequest:
    """A user token for ``user``, or an app token when ``user`` is None."""
    if user is None:
        return TokenRequest("chat", expire, app=True)
    return TokenRequest("chat", expire, user=params.account(user, name))


def _answer(request: Request, key: str, want: TokenRequest) -> Answer:
    (issued,) = issue(request, want)
    return Answer({key: issued.token, "expire": issued.expire}, issued.expire)


@routes.get("/chat/app/", strict_slashes=False)
def chat_app_token(request: Request) -> Answer:
    """agora-token-service: a Chat app token → ``{"chatToken"}``."""
    return _answer(request, "chatToken",
                   chat_request(None, params.expire(request, request.args.get("expiry"), "expiry")))


@routes.get("/chat/account/<chat_id>/", strict_slashes=False)
def chat_user_token(request: Request, chat_id) -> Answer:
    """agora-token-service: a Chat user token for ``chatid`` → ``{"chatToken"}``."""
    return _answer(request, "chatToken",
                   chat_request(chat_id, params.expire(request, request.args.get("expiry"), "expiry")))


@routes.post("/generate-user-token")
def generate_user_token(request: Request) -> Answer:
    """Chat guide: ``{"user_uuid", "expire"}`` → ``{"token"}``."""
    body = params.json_body(request)
    user = params.account(body.get("user_uuid"), "user_uuid")
    return _answer(request, "token", chat_request(user, params.expire(request, body.get("expire"))))


@routes.post("/generate-app-token")
def generate_app_token(request: Request) -> Answer:
    """Chat guide: ``{"expire"}`` → ``{"token"}`` (an app token)."""
    body = params.json_body(request)
    return _answer(request, "token", chat_request(None, params.expire(request, body.get("expire"))))
