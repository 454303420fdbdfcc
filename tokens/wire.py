"""AccessToken2's byte-level encoding: little-endian integers and length-prefixed strings.

``Reader`` checks every bound and raises ``TokenError`` on truncated or oversized input, so
that parsing untrusted tokens cannot raise anything else.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from itertools import chain

from .exceptions import TokenError

_U16 = struct.Struct("<H")
_I16 = struct.Struct("<h")
_U32 = struct.Struct("<I")
_PRIVILEGE = struct.Struct("<HI")

pack_u16 = _U16.pack
pack_i16 = _I16.pack
pack_u32 = _U32.pack


def pack_bytes(data: bytes) -> bytes:
    """uint16 length, then the bytes."""
    if len(data) > 0xFFFF:
        raise TokenError(f"a field of {len(data)} bytes does not fit AccessToken2's 65,535-byte limit")
    return _U16.pack(len(data)) + data


def pack_str(text: str) -> bytes:
    return pack_bytes(text.encode("utf-8"))


@lru_cache(maxsize=1024)
def _service_head(service_type: int, privileges: tuple[tuple[int, int], ...]) -> bytes:
    count = len(privileges)
    if count > 0xFFFF:
        raise TokenError(f"a service cannot carry {count} privileges")
    flat = chain.from_iterable(sorted(privileges))
    return struct.pack("<HH" + "HI" * count, service_type, count, *flat)


def pack_service_head(service_type: int, privileges: dict[int, int]) -> bytes:
    """uint16 type, uint16 count, then (uint16 privilege, uint32 expire) sorted by privilege id.

    Cached by value: builders repeat a few shapes (a publisher's four privileges, one lifetime),
    and a cache hit costs a third of sorting and packing the map again.
    """
    return _service_head(service_type, tuple(privileges.items()))


class Reader:
    """A cursor over a bytes object; every read is bounds-checked."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def _take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise TokenError(f"token is truncated: {what} runs past the end of the data")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u16(self, what: str = "a 16-bit field") -> int:
        return _U16.unpack(self._take(2, what))[0]

    def i16(self, what: str = "a 16-bit field") -> int:
        return _I16.unpack(self._take(2, what))[0]

    def u32(self, what: str = "a 32-bit field") -> int:
        return _U32.unpack(self._take(4, what))[0]

    def bytes(self, what: str = "a string field") -> bytes:
        return self._take(self.u16(what), what)

    def str(self, what: str = "a string field") -> str:
        raw = self.bytes(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError(f"token is malformed: {what} is not UTF-8 text") from None

    def privileges(self) -> dict[int, int]:
        count = self.u16("the privilege count")
        out: dict[int, int] = {}
        for _ in range(count):
            key, value = _PRIVILEGE.unpack(self._take(6, "a privilege"))
            out[key] = value
        return out

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos
