"""RTM contract of agora-token-service: ``GET /rtm/:rtmuid/?expiry=`` → ``{"rtmToken"}``."""
from __future__ import annotations

from auth.models import TokenRequest

from . import params
from .issue import issue
from .routing import Answer, Request, Routes

routes = Routes("rtm")


def rtm_request(user, expire) -> TokenRequest:
    return TokenRequest("rtm", expire, user=params.account(user, "rtmuid"))


@routes.get("/rtm/<rtm_uid>/", strict_slashes=False)
def rtm_token(request: Request, rtm_uid) -> Answer:
    """An RTM login token for ``rtmuid``."""
    (issued,) = issue(request, rtm_request(rtm_uid, params.expire(request, request.args.get("expiry"), "expiry")))
    return Answer({"rtmToken": issued.token, "expire": issued.expire}, issued.expire)
