"""Agora AccessToken2 ("007"): build, parse, inspect and verify tokens for every service.

Pure functions and small classes: no Flask, no configuration, no I/O. Every bad input, to a
builder or to the parser, raises ``TokenError`` (a ``ValueError``) with a message a person can
act on.

    >>> import tokens
    >>> tokens.build_rtc_token(app_id, app_certificate, "lobby", 42, tokens.Role.PUBLISHER, 3600)
    '007eJx…'
    >>> tokens.parse_token(token).verify(app_certificate)
    True
"""
from .access_token import AccessToken, parse_token, verify_token
from .builders import (
    build_apaas_app_token, build_apaas_room_user_token, build_apaas_user_token,
    build_chat_app_token, build_chat_user_token, build_conversational_ai_token, build_fpa_token,
    build_rtc_rtm_token, build_rtc_token, build_rtc_token_with_privileges, build_rtm2_token,
    build_rtm_token, build_speech_to_text_token,
)
from .checks import MAX_EXPIRE, MAX_UID, check_uid
from .exceptions import TokenError
from .identifiers import (
    MAX_ACCOUNT_BYTES, MAX_CHANNEL_BYTES, MAX_CHAT_USER_CHARS, MAX_RTM_USER_BYTES, WILDCARD_CHANNEL,
    check_account, check_channel, check_chat_user, check_rtm_user,
)
from .roles import ROLE_SPELLINGS, ROLES, Role
from .services import (
    SERVICE_TYPES, RtcPrivilege, Rtm2Permission, Rtm2Resource, Service, ServiceApaas,
    ServiceChat, ServiceConversationalAi, ServiceFcdn, ServiceFpa, ServiceRtc, ServiceRtm,
    ServiceRtm2, ServiceSpeechToText, ServiceStreaming,
)

__all__ = [
    "AccessToken", "MAX_ACCOUNT_BYTES", "MAX_CHANNEL_BYTES", "MAX_CHAT_USER_CHARS", "MAX_EXPIRE",
    "MAX_RTM_USER_BYTES", "MAX_UID", "ROLES", "ROLE_SPELLINGS", "Role", "RtcPrivilege",
    "Rtm2Permission", "Rtm2Resource", "SERVICE_TYPES", "Service", "ServiceApaas", "ServiceChat",
    "ServiceConversationalAi", "ServiceFcdn", "ServiceFpa", "ServiceRtc", "ServiceRtm",
    "ServiceRtm2", "ServiceSpeechToText", "ServiceStreaming", "TokenError", "WILDCARD_CHANNEL",
    "build_apaas_app_token", "build_apaas_room_user_token", "build_apaas_user_token",
    "build_chat_app_token", "build_chat_user_token", "build_conversational_ai_token",
    "build_fpa_token", "build_rtc_rtm_token", "build_rtc_token",
    "build_rtc_token_with_privileges", "build_rtm2_token", "build_rtm_token",
    "build_speech_to_text_token", "check_account", "check_channel", "check_chat_user",
    "check_rtm_user", "check_uid", "parse_token", "verify_token",
]
