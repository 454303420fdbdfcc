"""The services an AccessToken2 can carry, one small dataclass each.

A service knows its type id, its privilege names, and how to pack and unpack the fields that
follow its privilege map. ``SERVICE_TYPES`` maps type ids to classes for the parser; a type
missing from it stops parsing (spec: a newer token still parses).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

from .wire import Reader, pack_i16, pack_service_head, pack_str, pack_u16


def uid_text(uid: int | str) -> str:
    """How the format writes a uid: a number as decimal text, uid 0 as "" (any user)."""
    if isinstance(uid, int):
        return "" if uid == 0 else str(uid)
    return uid


@dataclass
class Service:
    """Common part: a type id and a map privilege id → expire (seconds after issue_ts)."""

    TYPE: ClassVar[int] = 0
    NAME: ClassVar[str] = ""
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {}

    privileges: dict[int, int] = field(default_factory=dict, kw_only=True)

    def add_privilege(self, privilege: int, expire: int) -> Service:
        self.privileges[int(privilege)] = expire
        return self

    def pack(self) -> bytes:
        return pack_service_head(self.TYPE, self.privileges) + self.pack_fields()

    def pack_fields(self) -> bytes:
        return b""

    @classmethod
    def unpack(cls, reader: Reader) -> Service:
        """Read one service whose type id the caller has already consumed."""
        privileges = reader.privileges()
        service = cls(**cls.unpack_fields(reader))
        service.privileges = privileges
        return service

    @classmethod
    def unpack_fields(cls, reader: Reader) -> dict[str, Any]:
        return {}

    def fields_dict(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: type, name, fields and privileges by name."""
        names = self.PRIVILEGE_NAMES
        return {
            "type": self.TYPE,
            "name": self.NAME,
            **self.fields_dict(),
            "privileges": {names.get(k, str(k)): v for k, v in sorted(self.privileges.items())},
        }


class RtcPrivilege(IntEnum):
    JOIN_CHANNEL = 1
    PUBLISH_AUDIO_STREAM = 2
    PUBLISH_VIDEO_STREAM = 3
    PUBLISH_DATA_STREAM = 4


def _names(enum: type[IntEnum]) -> dict[int, str]:
    return {m.value: m.name.lower() for m in enum}


@dataclass
class _ChannelAccount(Service):
    """Services whose fields are a channel name and a uid or account (RTC, Streaming, FCDN)."""

    channel_name: str = ""
    uid: str = ""  # already in wire form: uid_text()

    def pack_fields(self) -> bytes:
        return pack_str(self.channel_name) + pack_str(self.uid)

    @classmethod
    def unpack_fields(cls, reader: Reader) -> dict[str, Any]:
        return {"channel_name": reader.str("the channel name"), "uid": reader.str("the uid")}

    def fields_dict(self) -> dict[str, Any]:
        return {"channel_name": self.channel_name, "uid": self.uid}


@dataclass
class ServiceRtc(_ChannelAccount):
    TYPE: ClassVar[int] = 1
    NAME: ClassVar[str] = "rtc"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = _names(RtcPrivilege)


@dataclass
class _UserId(Service):
    """Services whose one field is a user id (RTM, Chat)."""

    user_id: str = ""

    def pack_fields(self) -> bytes:
        return pack_str(self.user_id)

    @classmethod
    def unpack_fields(cls, reader: Reader) -> dict[str, Any]:
        return {"user_id": reader.str("the user id")}

    def fields_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id}


@dataclass
class ServiceRtm(_UserId):
    TYPE: ClassVar[int] = 2
    NAME: ClassVar[str] = "rtm"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "login"}
    LOGIN: ClassVar[int] = 1


@dataclass
class ServiceStreaming(_ChannelAccount):
    TYPE: ClassVar[int] = 3
    NAME: ClassVar[str] = "streaming"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "publish_mix_stream", 2: "publish_raw_stream"}


@dataclass
class ServiceFpa(Service):
    TYPE: ClassVar[int] = 4
    NAME: ClassVar[str] = "fpa"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "login"}
    LOGIN: ClassVar[int] = 1


@dataclass
class ServiceChat(_UserId):
    TYPE: ClassVar[int] = 5
    NAME: ClassVar[str] = "chat"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "user", 2: "app"}
    USER: ClassVar[int] = 1
    APP: ClassVar[int] = 2


@dataclass
class ServiceFcdn(_ChannelAccount):
    TYPE: ClassVar[int] = 6
    NAME: ClassVar[str] = "fcdn"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "publish", 2: "play"}


@dataclass
class ServiceApaas(Service):
    TYPE: ClassVar[int] = 7
    NAME: ClassVar[str] = "apaas"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "room_user", 2: "user", 3: "app"}
    ROOM_USER: ClassVar[int] = 1
    USER: ClassVar[int] = 2
    APP: ClassVar[int] = 3

    room_uuid: str = ""
    user_uuid: str = ""
    role: int = -1  # int16; -1 where the token is not for a room user

    def pack_fields(self) -> bytes:
        return pack_str(self.room_uuid) + pack_str(self.user_uuid) + pack_i16(self.role)

    @classmethod
    def unpack_fields(cls, reader: Reader) -> dict[str, Any]:
        return {
            "room_uuid": reader.str("the room uuid"),
            "user_uuid": reader.str("the user uuid"),
            "role": reader.i16("the role"),
        }

    def fields_dict(self) -> dict[str, Any]:
        return {"room_uuid": self.room_uuid, "user_uuid": self.user_uuid, "role": self.role}


class Rtm2Resource(IntEnum):
    MESSAGE_CHANNELS = 0
    STREAM_CHANNELS = 1
    GROUP_CHANNELS = 2
    SERVER_GROUPS = 3
    USERS = 4


class Rtm2Permission(IntEnum):
    READ = 0
    WRITE = 1


Rtm2Permissions = Mapping[int, Mapping[int, Sequence[str]]]


@dataclass
class ServiceRtm2(_UserId):
    """RTM with resource permissions: resource type → permission type → resource names."""

    TYPE: ClassVar[int] = 8
    NAME: ClassVar[str] = "rtm2"
    PRIVILEGE_NAMES: ClassVar[Mapping[int, str]] = {1: "login"}
    LOGIN: ClassVar[int] = 1

    permissions: dict[int, dict[int, list[str]]] = field(default_factory=dict)

    def pack_fields(self) -> bytes:
        parts = [pack_str(self.user_id), pack_u16(len(self.permissions))]
        for resource in sorted(self.permissions):
            by_permission = self.permissions[resource]
            parts += [pack_u16(resource), pack_u16(len(by_permission))]
            for permission in sorted(by_permission):
                names = by_permission[permission]
                parts += [pack_u16(permission), pack_u16(len(names))]
                parts.extend(pack_str(name) for name in names)
        return b"".join(parts)

    @classmethod
    def unpack_fields(cls, reader: Reader) -> dict[str, Any]:
        user_id = reader.str("the user id")
        permissions: dict[int, dict[int, list[str]]] = {}
        for _ in range(reader.u16("the resource type count")):
            resource = reader.u16("a resource type")
            by_permission = permissions.setdefault(resource, {})
            for _ in range(reader.u16("the permission count")):
                permission = reader.u16("a permission type")
                count = reader.u16("the resource count")
                by_permission[permission] = [reader.str("a resource name") for _ in range(count)]
        return {"user_id": user_id, "permissions": permissions}

    def fields_dict(self) -> dict[str, Any]:
        def name(enum: type[IntEnum], value: int) -> str:
            return enum(value).name.lower() if value in enum._value2member_map_ else str(value)

        return {
            "user_id": self.user_id,
            "permissions": {
                name(Rtm2Resource, r): {name(Rtm2Permission, p): list(v) for p, v in sorted(ps.items())}
                for r, ps in sorted(self.permissions.items())
            },
        }


@dataclass
class ServiceConversationalAi(Service):
    TYPE: ClassVar[int] = 9
    NAME: ClassVar[str] = "conversational_ai"


@dataclass
class ServiceSpeechToText(Service):
    TYPE: ClassVar[int] = 10
    NAME: ClassVar[str] = "speech_to_text"


SERVICE_TYPES: dict[int, type[Service]] = {
    cls.TYPE: cls
    for cls in (
        ServiceRtc, ServiceRtm, ServiceStreaming, ServiceFpa, ServiceChat, ServiceFcdn,
        ServiceApaas, ServiceRtm2, ServiceConversationalAi, ServiceSpeechToText,
    )
}
