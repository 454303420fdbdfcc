"""The builders Agora's own libraries offer, with every input checked once, up front.

Each builder returns a token string or raises ``TokenError``; none returns a half-built
token. Channel names and user ids are held to Agora's rules (``identifiers``), the shared
inputs to ``checks``, the role to ``roles``. ``issue_ts``
and ``salt`` default to now and a fresh random salt; fixing them makes the output
reproducible (tests, interop checks).
"""
from __future__ import annotations

import hashlib

from .access_token import AccessToken
from .checks import MAX_EXPIRE, check_lifetime, check_uid, token_header
from .exceptions import TokenError
from .identifiers import check_channel, check_chat_user, check_rtm_user, check_text
from .roles import Role, check_role
from .services import (
    RtcPrivilege, Rtm2Permissions, Service, ServiceApaas, ServiceChat, ServiceConversationalAi,
    ServiceFpa, ServiceRtc, ServiceRtm, ServiceRtm2, ServiceSpeechToText, uid_text,
)

_JOIN, _AUDIO, _VIDEO, _DATA = (int(p) for p in RtcPrivilege)


def _rtc_service(channel_name: str, uid: int | str, privileges: dict[int, int]) -> ServiceRtc:
    return ServiceRtc(channel_name=check_channel(channel_name), uid=check_uid(uid), privileges=privileges)


def _rtc_for_role(channel_name: str, uid: int | str, role: Role | int, privilege_expire: int) -> ServiceRtc:
    check_lifetime(privilege_expire, "privilege lifetime", required=False)
    e = privilege_expire
    if check_role(role) is Role.PUBLISHER:
        return _rtc_service(channel_name, uid, {_JOIN: e, _AUDIO: e, _VIDEO: e, _DATA: e})
    return _rtc_service(channel_name, uid, {_JOIN: e})


def _rtm_user_for(uid: int | str, rtm_user: str | None) -> str:
    if rtm_user is not None:
        return check_rtm_user(rtm_user)
    if not isinstance(uid, str) and uid == 0:
        raise TokenError("uid 0 names no RTM user; pass rtm_user")
    return check_rtm_user(uid_text(uid) if isinstance(uid, int) else uid)


def _finish(token: AccessToken, app_certificate: str, *services: Service) -> str:
    token.services.extend(services)
    return token.build(app_certificate)


def build_rtc_token(app_id: str, app_certificate: str, channel_name: str, uid: int | str,
                    role: Role | int, token_expire: int, privilege_expire: int = 0, *,
                    issue_ts: int | None = None, salt: int | None = None) -> str:
    """An RTC token for ``uid`` (int, 0 = any) or account (str) in ``channel_name``.

    A publisher gets join + publish audio, video and data; a subscriber gets join only. Each
    privilege lives ``privilege_expire`` seconds (0: as long as the token).
    """
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    return _finish(token, app_certificate, _rtc_for_role(channel_name, uid, role, privilege_expire))


def build_rtc_token_with_privileges(
    app_id: str, app_certificate: str, channel_name: str, uid: int | str, token_expire: int,
    join_channel_expire: int, publish_audio_expire: int, publish_video_expire: int,
    publish_data_expire: int, *, issue_ts: int | None = None, salt: int | None = None,
) -> str:
    """An RTC token with all four privileges, each with its own lifetime."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    join, audio, video, data = (
        check_lifetime(v, f"{name} privilege lifetime", required=False)
        for name, v in (("join channel", join_channel_expire), ("publish audio", publish_audio_expire),
                        ("publish video", publish_video_expire), ("publish data", publish_data_expire))
    )
    privileges = {_JOIN: join, _AUDIO: audio, _VIDEO: video, _DATA: data}
    return _finish(token, app_certificate, _rtc_service(channel_name, uid, privileges))


def build_rtc_rtm_token(app_id: str, app_certificate: str, channel_name: str, uid: int | str,
                        role: Role | int, token_expire: int, privilege_expire: int = 0, *,
                        rtm_user: str | None = None, rtm_expire: int | None = None,
                        issue_ts: int | None = None, salt: int | None = None) -> str:
    """RTC (as ``build_rtc_token``) plus RTM login in one token.

    The RTM user defaults to the uid's text; the RTM login lives ``rtm_expire`` seconds
    (default: the token lifetime).
    """
    return _rtc_rtm_plus(app_id, app_certificate, channel_name, uid, role, token_expire,
                         privilege_expire, rtm_user, rtm_expire, issue_ts, salt)


def _rtc_rtm_plus(app_id, app_certificate, channel_name, uid, role, token_expire, privilege_expire,
                  rtm_user, rtm_expire, issue_ts, salt, *extra: Service) -> str:
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    rtc = _rtc_for_role(channel_name, uid, role, privilege_expire)
    login = token_expire if rtm_expire is None else check_lifetime(rtm_expire, "RTM lifetime", required=False)
    rtm = ServiceRtm(user_id=_rtm_user_for(uid, rtm_user)).add_privilege(ServiceRtm.LOGIN, login)
    return _finish(token, app_certificate, rtc, rtm, *extra)


def build_rtm_token(app_id: str, app_certificate: str, user_id: str, token_expire: int, *,
                    issue_ts: int | None = None, salt: int | None = None) -> str:
    """An RTM login token for ``user_id``."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    rtm = ServiceRtm(user_id=check_rtm_user(user_id))
    return _finish(token, app_certificate, rtm.add_privilege(ServiceRtm.LOGIN, token_expire))


def build_rtm2_token(app_id: str, app_certificate: str, user_id: str, token_expire: int,
                     permissions: Rtm2Permissions, *, issue_ts: int | None = None,
                     salt: int | None = None) -> str:
    """An RTM login token limited to resources: {Rtm2Resource: {Rtm2Permission: [names]}}."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    checked: dict[int, dict[int, list[str]]] = {}
    try:
        for resource, by_permission in permissions.items():
            if not 0 <= int(resource) <= 0xFFFF:
                raise ValueError
            inner = checked.setdefault(int(resource), {})
            for permission, names in by_permission.items():
                if not 0 <= int(permission) <= 0xFFFF or isinstance(names, str):
                    raise ValueError
                inner[int(permission)] = [check_text(n, "RTM resource name") for n in names]
    except TokenError:
        raise  # (a ValueError too) its message says which name is wrong: keep it
    except (AttributeError, TypeError, ValueError):
        raise TokenError("permissions must map resource types to {permission type: [resource names]}") from None
    rtm2 = ServiceRtm2(user_id=check_rtm_user(user_id), permissions=checked)
    return _finish(token, app_certificate, rtm2.add_privilege(ServiceRtm2.LOGIN, token_expire))


def build_chat_user_token(app_id: str, app_certificate: str, user_id: str, token_expire: int, *,
                          issue_ts: int | None = None, salt: int | None = None) -> str:
    """A Chat user token for ``user_id``."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    chat = ServiceChat(user_id=check_chat_user(user_id))
    return _finish(token, app_certificate, chat.add_privilege(ServiceChat.USER, token_expire))


def build_chat_app_token(app_id: str, app_certificate: str, token_expire: int, *,
                         issue_ts: int | None = None, salt: int | None = None) -> str:
    """A Chat app token (server-side REST calls)."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    return _finish(token, app_certificate, ServiceChat().add_privilege(ServiceChat.APP, token_expire))


def build_fpa_token(app_id: str, app_certificate: str, token_expire: int = MAX_EXPIRE, *,
                    issue_ts: int | None = None, salt: int | None = None) -> str:
    """An FPA login token; Agora's builder makes it live 24 hours."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    return _finish(token, app_certificate, ServiceFpa().add_privilege(ServiceFpa.LOGIN, 0))


def _check_room_role(role: int) -> int:
    if isinstance(role, bool) or not isinstance(role, int) or not -32768 <= role <= 32767:
        raise TokenError(f"room role must be a 16-bit integer, got {role!r}")
    return role


def build_apaas_room_user_token(app_id: str, app_certificate: str, room_uuid: str, user_uuid: str,
                                role: int, token_expire: int, *, issue_ts: int | None = None,
                                salt: int | None = None) -> str:
    """APaaS (Flexible Classroom) room user token: APaaS + RTM login + Chat user (md5 of user)."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    user = check_text(user_uuid, "user uuid")
    apaas = ServiceApaas(room_uuid=check_text(room_uuid, "room uuid"), user_uuid=user,
                         role=_check_room_role(role))
    rtm = ServiceRtm(user_id=user).add_privilege(ServiceRtm.LOGIN, token_expire)
    chat = ServiceChat(user_id=hashlib.md5(user.encode("utf-8")).hexdigest())
    return _finish(token, app_certificate, apaas, rtm, chat.add_privilege(ServiceChat.USER, token_expire))


def build_apaas_user_token(app_id: str, app_certificate: str, user_uuid: str, token_expire: int, *,
                           issue_ts: int | None = None, salt: int | None = None) -> str:
    """APaaS user token."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    apaas = ServiceApaas(user_uuid=check_text(user_uuid, "user uuid"))
    return _finish(token, app_certificate, apaas.add_privilege(ServiceApaas.USER, token_expire))


def build_apaas_app_token(app_id: str, app_certificate: str, token_expire: int, *,
                          issue_ts: int | None = None, salt: int | None = None) -> str:
    """APaaS app token."""
    token = token_header(app_id, app_certificate, token_expire, issue_ts, salt)
    return _finish(token, app_certificate, ServiceApaas().add_privilege(ServiceApaas.APP, token_expire))


def build_conversational_ai_token(app_id: str, app_certificate: str, channel_name: str,
                                  uid: int | str, role: Role | int, token_expire: int,
                                  privilege_expire: int = 0, *, rtm_user: str | None = None,
                                  rtm_expire: int | None = None, issue_ts: int | None = None,
                                  salt: int | None = None) -> str:
    """RTC (for the role) + RTM login + the Conversational AI service."""
    return _rtc_rtm_plus(app_id, app_certificate, channel_name, uid, role, token_expire,
                         privilege_expire, rtm_user, rtm_expire, issue_ts, salt,
                         ServiceConversationalAi())


def build_speech_to_text_token(app_id: str, app_certificate: str, channel_name: str,
                               uid: int | str, role: Role | int, token_expire: int,
                               privilege_expire: int = 0, *, rtm_user: str | None = None,
                               rtm_expire: int | None = None, issue_ts: int | None = None,
                               salt: int | None = None) -> str:
    """RTC (for the role) + RTM login + the speech-to-text service."""
    return _rtc_rtm_plus(app_id, app_certificate, channel_name, uid, role, token_expire,
                         privilege_expire, rtm_user, rtm_expire, issue_ts, salt, ServiceSpeechToText())
