"""RTM contract of agora-token-service: ``GET /rtm/:rtmuid/?expiry=`` → ``{"rtmToken"}``."""
from __future__ import annotations

from flask import jsonify

from auth.models import TokenRequest

from . import params
from .guard import ProtectedBlueprint
from .issue import issue

bp = ProtectedBlueprint("rtm", __name__)


def rtm_request(user, expire) -> TokenRequest:
    return TokenRequest("rtm", expire, user=params.rtm_user(user, "rtmuid"))


@bp.get("/rtm/<segment:rtm_uid>/", strict_slashes=False)
def rtm_token(rtm_uid):
    """An RTM login token for ``rtmuid``."""
    (issued,) = issue(rtm_request(rtm_uid, params.query_expiry()))
    return jsonify(rtmToken=issued.token, expire=issued.expire), issued.headers
