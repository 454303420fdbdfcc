"""RTC contracts: Agora's Go sample, agora-token-service, the Node tutorial server, the Python sample."""
from __future__ import annotations

from auth.models import TokenRequest
from errors import BadRequest
from tokens import Role

from . import params
from .issue import issue
from .routing import Answer, Request, Routes

routes = Routes("rtc")

PYTHON_SAMPLE_EXPIRE = 900  # Agora's Python sample: uid 0, publisher, 15 minutes


def rtc_request(channel, role, uid, expire) -> TokenRequest:
    return TokenRequest("rtc", expire, channel=channel, uid=uid, role=role)


def _uid_for(token_type: str, value: str) -> int | str:
    kind = token_type.lower()
    if kind == "uid":
        return params.numeric_uid(value)
    if kind == "useraccount":
        return params.account(value, "userAccount")
    raise BadRequest("tokenType must be uid or userAccount")


@routes.post("/fetch_rtc_token")
def fetch_rtc_token(request: Request) -> Answer:
    """Agora's Go sample: ``{"uid", "ChannelName", "role"}`` → ``{"token", "code": "200"}``."""
    body = params.json_body(request)
    want = rtc_request(params.channel(body.get("ChannelName"), "ChannelName"),
                       params.role(body.get("role")), params.numeric_uid(body.get("uid")),
                       params.expire(request, body.get("expire")))
    (issued,) = issue(request, want)
    return Answer({"token": issued.token, "code": "200", "expire": issued.expire}, issued.expire)


@routes.get("/rtc/<channel>/<role>/<token_type>/<uid>/", strict_slashes=False)
def rtc_token(request: Request, channel, role, token_type, uid) -> Answer:
    """agora-token-service: ``/rtc/:channelName/:role/:tokenType/:uid/?expiry=`` → ``{"rtcToken"}``."""
    want = rtc_request(params.channel(channel, "channelName"), params.role(role), _uid_for(token_type, uid),
                       params.expire(request, request.args.get("expiry"), "expiry"))
    (issued,) = issue(request, want)
    return Answer({"rtcToken": issued.token, "expire": issued.expire}, issued.expire)


@routes.get("/rte/<channel>/<role>/<token_type>/<rtc_uid>/", strict_slashes=False)
@routes.get("/rte/<channel>/<role>/<token_type>/<rtc_uid>/<rtm_uid>/", strict_slashes=False)
def rte_token(request: Request, channel, role, token_type, rtc_uid, rtm_uid=None) -> Answer:
    """agora-token-service: an RTC and an RTM token in one call (rtmuid defaults to rtcuid)."""
    expire = params.expire(request, request.args.get("expiry"), "expiry")
    rtc = rtc_request(params.channel(channel, "channelName"), params.role(role),
                      _uid_for(token_type, rtc_uid), expire)
    rtm = TokenRequest("rtm", expire, user=params.account(rtm_uid if rtm_uid is not None else rtc_uid, "rtmuid"))
    issued_rtc, issued_rtm = issue(request, rtc, rtm)
    expire_given = min(issued_rtc.expire, issued_rtm.expire)
    return Answer({"rtcToken": issued_rtc.token, "rtmToken": issued_rtm.token, "expire": expire_given},
                  expire_given)


@routes.get("/access_token")
def access_token(request: Request) -> Answer:
    """The Node tutorial server: ``?channel=&uid=&role=&expiredTs=`` → ``{"token"}``."""
    args = request.args
    role = args.get("role")
    want = rtc_request(params.channel(args.get("channel", args.get("channelName")), "channel"),
                       Role.SUBSCRIBER if role in (None, "") else params.role(role),
                       params.numeric_uid(args.get("uid", "0")),
                       params.expire(request, args.get("expiredTs"), "expiredTs"))
    (issued,) = issue(request, want)
    return Answer({"token": issued.token, "expire": issued.expire}, issued.expire)


@routes.get("/v1/token")
def python_sample_token(request: Request) -> Answer:
    """Agora's Python sample: ``?channel_name=`` → the token as plain text (uid 0, publisher, 15 min)."""
    want = rtc_request(params.channel(request.args.get("channel_name"), "channel_name"),
                       Role.PUBLISHER, 0, PYTHON_SAMPLE_EXPIRE)
    (issued,) = issue(request, want)
    return Answer(issued.token, issued.expire)
