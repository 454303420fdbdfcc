"""The AccessToken2 container: pack and sign services, parse and verify tokens.

    token = "007" + base64(zlib(bytes(signature) + signing_info))
    signing_info = bytes(app_id) u32(issue_ts) u32(expire) u32(salt) u16(n) services…

The signing key depends on (certificate, issue_ts, salt). The first HMAC, over the certificate
keyed by issue_ts, is cached per (certificate, second), so a busy server pays two HMACs per
token rather than three; the output is unchanged.

Where a token's time goes (bench/tokens.py prints it): over half is zlib, which the format
requires (and byte-identical output its default settings); then the two HMACs and the packing.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .exceptions import TokenError
from .services import SERVICE_TYPES, Service
from .wire import Reader, pack_str, pack_u16, pack_u32

_HEADER = struct.Struct("<IIIH")  # issue_ts, expire, salt, service count

VERSION = "007"
MAX_TOKEN_CHARS = 32 * 1024  # far above any real token; refuse larger input before decoding
MAX_DECODED_BYTES = 64 * 1024  # cap on the inflated payload (a zlib bomb stops here)

# HMAC's inner and outer pads: a key XOR 0x36 / 0x5C, byte by byte, as translation tables.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_sha256 = hashlib.sha256


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) for keys up to 64 bytes; ours are 4 or 32.

    The same bytes as ``hmac.digest(key, msg, "sha256")``, a third faster for messages this
    short: two hash calls, where OpenSSL's one-shot HMAC spends longer setting up than hashing.
    """
    key = key.ljust(64, b"\0")
    return _sha256(key.translate(_OPAD) + _sha256(key.translate(_IPAD) + msg).digest()).digest()


@lru_cache(maxsize=256)
def _issue_key(app_certificate: str, issue_ts: int) -> bytes:
    return hmac_sha256(pack_u32(issue_ts), app_certificate.encode("utf-8"))


def sign(app_certificate: str, issue_ts: int, salt: int, signing_info: bytes) -> bytes:
    """HMAC-SHA256 over signing_info with the key derived from certificate, issue_ts, salt."""
    return hmac_sha256(hmac_sha256(pack_u32(salt), _issue_key(app_certificate, issue_ts)), signing_info)


def encode(signature: bytes, signing_info: bytes) -> str:
    content = pack_u16(len(signature)) + signature + signing_info
    return VERSION + binascii.b2a_base64(zlib.compress(content), newline=False).decode("ascii")


_packed_app_id = lru_cache(maxsize=64)(pack_str)  # an app's id, packed once


def _service_type(service: Service) -> int:
    return service.TYPE


@dataclass
class AccessToken:
    """An AccessToken2: header fields and services.

    Build one with services and call ``build(app_certificate)``; or get one from
    ``AccessToken.parse(text)``, which also keeps the signed bytes for ``verify``.
    """

    app_id: str
    issue_ts: int
    expire: int
    salt: int
    services: list[Service] = field(default_factory=list)
    signature: bytes = field(default=b"", repr=False)
    signing_info: bytes = field(default=b"", repr=False)

    def add_service(self, service: Service) -> AccessToken:
        self.services.append(service)
        return self

    def pack_signing_info(self) -> bytes:
        # sorted() is stable: services of one type keep the order they were added in.
        ordered = sorted(self.services, key=_service_type) if len(self.services) > 1 else self.services
        parts = [_packed_app_id(self.app_id), _HEADER.pack(self.issue_ts, self.expire, self.salt, len(ordered))]
        parts.extend(s.pack() for s in ordered)
        return b"".join(parts)

    def build(self, app_certificate: str) -> str:
        """Pack, sign and encode. Inputs are validated by the builders in ``builders.py``."""
        if not self.services:
            raise TokenError("a token needs at least one service")
        signing_info = self.pack_signing_info()
        return encode(sign(app_certificate, self.issue_ts, self.salt, signing_info), signing_info)

    @classmethod
    def parse(cls, token: str) -> AccessToken:
        """Decode a token. Raises ``TokenError`` (only) on anything malformed."""
        if not isinstance(token, str):
            raise TokenError(f"a token is text, not {type(token).__name__}")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError(f"token is {len(token)} characters long; the limit is {MAX_TOKEN_CHARS}")
        if not token.startswith(VERSION):
            raise TokenError(f"not an AccessToken2: it must start with {VERSION!r}")
        try:
            compressed = base64.b64decode(token[len(VERSION):], validate=True)
        except (binascii.Error, ValueError):
            raise TokenError("token is malformed: the part after '007' is not valid base64") from None
        data = _inflate(compressed)

        reader = Reader(data)
        signature = reader.bytes("the signature")
        signing_info = data[reader.pos:]
        app_id = reader.str("the app id")
        issue_ts = reader.u32("the issue time")
        expire = reader.u32("the lifetime")
        salt = reader.u32("the salt")
        count = reader.u16("the service count")
        services: list[Service] = []
        for _ in range(count):
            service_cls = SERVICE_TYPES.get(reader.u16("a service type"))
            if service_cls is None:
                break  # a service type newer than this parser: keep what came before it
            services.append(service_cls.unpack(reader))
        return cls(app_id, issue_ts, expire, salt, services, signature, signing_info)

    def verify(self, app_certificate: str) -> bool:
        """Whether the parsed signature matches this certificate (constant-time compare)."""
        if not self.signing_info:
            raise TokenError("only a parsed token can be verified")
        if not isinstance(app_certificate, str):
            raise TokenError("the app certificate must be text")
        try:
            expected = sign(app_certificate, self.issue_ts, self.salt, self.signing_info)
        except UnicodeEncodeError:
            raise TokenError("the app certificate is not valid text (it has a lone surrogate)") from None
        return hmac.compare_digest(expected, self.signature)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "app_id": self.app_id,
            "issue_ts": self.issue_ts,
            "expire": self.expire,
            "expires_at": self.issue_ts + self.expire,
            "salt": self.salt,
            "services": [s.to_dict() for s in self.services],
        }


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, MAX_DECODED_BYTES + 1)
    except zlib.error:
        raise TokenError("token is malformed: its payload is not a valid zlib stream") from None
    if len(data) > MAX_DECODED_BYTES or inflater.unconsumed_tail:
        raise TokenError(f"token payload inflates past {MAX_DECODED_BYTES} bytes; refusing it")
    if not inflater.eof:
        raise TokenError("token is truncated: its zlib stream ends early")
    return data


def parse_token(token: str) -> AccessToken:
    """Parse any AccessToken2 string. Raises ``TokenError`` on malformed input."""
    return AccessToken.parse(token)


def verify_token(token: str, app_certificate: str) -> bool:
    """Parse ``token`` and check its signature against ``app_certificate``."""
    return AccessToken.parse(token).verify(app_certificate)
