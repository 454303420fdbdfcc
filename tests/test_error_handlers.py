"""api/error_handlers.py: every refusal is the JSON error shape, a 401 carries its RFC 6750
challenge, and Retry-After stays only where it means something."""
from __future__ import annotations

import pytest

from api.error_handlers import challenge
from exceptions import Unauthorized


@pytest.mark.parametrize("authorization, token_given", [
    (None, False),  # no credentials: a bare challenge
    ("Basic dXNlcjpwYXNz", False),  # another scheme is no bearer token either
    ("Bearer not-a-jwt", True),
    ("Bearer a.b.c", True),
])
def test_a_401_carries_the_challenge_rfc_6750_asks_for(client, authorization, token_given):
    headers = {} if authorization is None else {"Authorization": authorization}
    r = client.get("/rtm/bob/", headers=headers)
    assert r.status_code == 401 and r.json["code"] == "401"
    value = r.headers["WWW-Authenticate"]
    assert value.startswith('Bearer realm="agora-token-server"')
    assert ('error="invalid_token"' in value) is token_given
    if token_given:
        assert f'error_description="{r.json["error"]}"' in value


def test_a_challenge_never_breaks_out_of_its_quoted_string():
    value = challenge(Unauthorized('token "x" \\ is bad'))
    description = value.partition('error_description="')[2]
    assert description == "token 'x'  is bad\""  # quotes turned, backslashes dropped: one closing quote
