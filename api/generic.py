"""agora-token-service's ``POST /getToken``: one body, dispatched on ``tokenType``."""
from __future__ import annotations

from flask import jsonify

from exceptions import BadRequest

from . import params
from .chat import chat_request
from .guard import ProtectedBlueprint
from .issue import issue
from .rtc import rtc_request
from .rtm import rtm_request

bp = ProtectedBlueprint("generic", __name__)


@bp.post("/getToken")
def get_token():
    """``{"tokenType": "rtc"|"rtm"|"chat", "channel", "role", "uid", "expire"}`` → ``{"token"}``.

    rtc needs channel, role and uid (all digits: a numeric uid; else an account); rtm needs
    uid (the RTM user; channel is optional); chat without uid is an app token.
    """
    body = params.json_body()
    kind = body.get("tokenType")
    expire = params.expire(body.get("expire"))
    uid = body.get("uid")
    if kind == "rtc":
        if uid is None or uid == "":
            raise BadRequest("uid is required for an rtc token")
        want = rtc_request(params.channel(body.get("channel")), params.role(body.get("role")),
                           params.uid_or_account(uid), expire)
    elif kind == "rtm":
        want = rtm_request(_user_id(uid), expire)
    elif kind == "chat":
        want = chat_request(None if uid in (None, "") else _user_id(uid), expire, "uid")
    else:
        raise BadRequest("tokenType must be rtc, rtm or chat")
    (issued,) = issue(want)
    return jsonify(token=issued.token, expire=issued.expire), issued.headers


def _user_id(uid) -> str | None:
    """A user id: a string as it is, a JSON integer as its text, nothing else."""
    if uid is None or isinstance(uid, str):
        return uid
    if isinstance(uid, bool) or not isinstance(uid, int):
        raise BadRequest("uid must be a string or an integer")
    return str(uid)
