"""RTC contracts: Agora's Go sample, agora-token-service, the Node tutorial server, the Python sample."""
from __future__ import annotations

from flask import jsonify, request

from auth.models import TokenRequest
from exceptions import BadRequest
from tokens import Role

from . import params
from .guard import ProtectedBlueprint
from .issue import issue

bp = ProtectedBlueprint("rtc", __name__)

PYTHON_SAMPLE_EXPIRE = 900  # Agora's Python sample: uid 0, publisher, 15 minutes


def rtc_request(channel, role, uid, expire) -> TokenRequest:
    return TokenRequest("rtc", expire, channel=channel, uid=uid, role=role)


def _uid_for(token_type: str, value: str) -> int | str:
    """agora-token-service's ``:tokenType/:uid``: an empty uid is uid 0 there, and here."""
    value = value or "0"
    kind = token_type.lower()
    if kind == "uid":
        return params.numeric_uid(value)
    if kind == "useraccount":
        return params.account(value, "userAccount")
    raise BadRequest("tokenType must be uid or userAccount")


@bp.post("/fetch_rtc_token")
def fetch_rtc_token():
    """Agora's Go sample: ``{"uid", "ChannelName", "role"}`` → ``{"token", "code": "200"}``."""
    body = params.json_body()
    want = rtc_request(params.channel(body.get("ChannelName"), "ChannelName"),
                       params.role(body.get("role")), params.numeric_uid(body.get("uid")),
                       params.expire(body.get("expire")))
    (issued,) = issue(want)
    return jsonify(token=issued.token, code="200", expire=issued.expire), issued.headers


@bp.get("/rtc/<channel>/<role>/<token_type>/<segment:uid>/", strict_slashes=False)
def rtc_token(channel, role, token_type, uid):
    """agora-token-service: ``/rtc/:channelName/:role/:tokenType/:uid/?expiry=`` → ``{"rtcToken"}``."""
    want = rtc_request(params.channel(channel, "channelName"), params.role(role), _uid_for(token_type, uid),
                       params.query_expiry())
    (issued,) = issue(want)
    return jsonify(rtcToken=issued.token, expire=issued.expire), issued.headers


@bp.get("/rte/<channel>/<role>/<token_type>/<segment:rtc_uid>/", strict_slashes=False)
@bp.get("/rte/<channel>/<role>/<token_type>/<segment:rtc_uid>/<rtm_uid>/", strict_slashes=False)
def rte_token(channel, role, token_type, rtc_uid, rtm_uid=None):
    """agora-token-service: an RTC and an RTM token in one call (rtmuid defaults to rtcuid)."""
    expire = params.query_expiry()
    rtc = rtc_request(params.channel(channel, "channelName"), params.role(role),
                      _uid_for(token_type, rtc_uid), expire)
    rtm = TokenRequest("rtm", expire, user=params.rtm_user(rtm_uid if rtm_uid is not None else rtc_uid, "rtmuid"))
    issued_rtc, issued_rtm = issue(rtc, rtm)
    expire_given = min(issued_rtc.expire, issued_rtm.expire)
    return (jsonify(rtcToken=issued_rtc.token, rtmToken=issued_rtm.token, expire=expire_given),
            {"X-Token-Expire": str(expire_given)})


@bp.get("/access_token")
def access_token():
    """The Node tutorial server: ``?channel=&uid=&role=&expiredTs=`` → ``{"token"}``."""
    args = request.args
    role = args.get("role")
    want = rtc_request(params.channel(args.get("channel", args.get("channelName")), "channel"),
                       Role.SUBSCRIBER if role in (None, "") else params.role(role),
                       params.numeric_uid(args.get("uid", "0")),
                       params.expire(args.get("expiredTs"), "expiredTs"))
    (issued,) = issue(want)
    return jsonify(token=issued.token, expire=issued.expire), issued.headers


@bp.get("/v1/token")
def python_sample_token():
    """Agora's Python sample: ``?channel_name=`` → the token as plain text (uid 0, publisher, 15 min)."""
    want = rtc_request(params.channel(request.args.get("channel_name"), "channel_name"),
                       Role.PUBLISHER, 0, PYTHON_SAMPLE_EXPIRE)
    (issued,) = issue(want)
    return issued.token, {"Content-Type": "text/plain; charset=utf-8", **issued.headers}
