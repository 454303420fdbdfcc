"""auth: no repr or str of the verifier, its keys or their attributes shows key material."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from auth.jwt import JWTVerifier
from auth.keys import SecretBytes
from tests.credentials import JWT_SECRET, make_jwt
from tests.jwtutil import make_settings, private_pem, public_pem, rsa_key

SECRET = JWT_SECRET.encode()
PRIVATE_BODY = "".join(private_pem(rsa_key(0)).splitlines()[1:-1])
NEEDLES = [
    JWT_SECRET, repr(SECRET), str(SECRET), SECRET.hex(), base64.b64encode(SECRET).decode(),
    base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode(), PRIVATE_BODY[:40],
]


def shown(obj: Any, depth: int) -> Iterator[str]:
    """repr() and str() of ``obj`` and, ``depth`` levels down, of its attributes."""
    yield repr(obj)
    yield str(obj)
    yield f"{obj}"
    if depth == 0:
        return
    try:
        attributes = list(vars(obj).values())
    except TypeError:  # no __dict__: __slots__ or a builtin
        attributes = [getattr(obj, name) for name in getattr(type(obj), "__slots__", ())
                      if hasattr(obj, name)]
    for value in attributes:
        yield from shown(value, depth - 1)


@pytest.mark.parametrize("fields, token", [
    ({"jwt_secret": JWT_SECRET}, lambda: make_jwt()),
    ({"jwt_public_key": public_pem(rsa_key(0))}, lambda: make_jwt(key=rsa_key(0), algorithm="RS256")),
], ids=["JWT_SECRET", "JWT_PUBLIC_KEY"])
def test_no_repr_shows_key_material(fields, token):
    verifier = JWTVerifier.from_settings(make_settings(**fields))
    assert verifier.verify(token()).subject == "user-1"  # the cache holds an entry too
    texts = list(shown(verifier, 3)) + list(shown(verifier._key, 2))
    assert any("algorithms=(" in text for text in texts)  # the walk reached the key
    for needle in NEEDLES:
        assert not any(needle in text for text in texts), needle


def test_secret_bytes_work_as_bytes_and_show_only_their_length():
    secret = SecretBytes(SECRET)
    assert secret == SECRET and bytes(secret) == SECRET and len(secret) == 64
    # UP031: %-formatting is one of the ways of showing it under test.
    assert repr(secret) == str(secret) == f"{secret}" == "%s" % secret == "<secret, 64 bytes>"  # noqa: UP031
