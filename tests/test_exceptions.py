"""exceptions.py: each refusal carries its status; a 401 its reason, from the fixed list the
metrics report."""
from __future__ import annotations

import re
from pathlib import Path

import auth
import exceptions
from auth.jwt import _MESSAGES
from exceptions import ServiceError, Unauthorized, error_body


def test_each_refusal_has_the_status_of_its_name():
    statuses = {name: cls.status for name, cls in vars(exceptions).items()
                if isinstance(cls, type) and issubclass(cls, ServiceError) and cls is not ServiceError}
    assert statuses == {"BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "RequestTimeout": 408,
                        "PayloadTooLarge": 413, "ServiceUnavailable": 503}


def test_an_error_keeps_its_message_and_its_own_headers():
    e = exceptions.ServiceUnavailable("the JWKS endpoint is unavailable", headers={"Retry-After": "5"})
    assert (e.message, e.headers, str(e)) == ("the JWKS endpoint is unavailable", {"Retry-After": "5"},
                                              "the JWKS endpoint is unavailable")
    assert error_body(e.status, e.message) == {"error": "the JWKS endpoint is unavailable", "code": "503"}


def test_a_401_says_whether_a_token_was_given_and_why_it_was_refused():
    assert (Unauthorized("x").token_given, Unauthorized("x").reason) == (True, "invalid")
    missing = Unauthorized("x", token_given=False)
    assert (missing.token_given, missing.reason) == (False, "missing")
    assert Unauthorized("x", reason="expired").reason == "expired"


def test_every_reason_the_code_gives_is_on_the_list():
    given = set()
    for path in Path(auth.__file__).parent.glob("*.py"):
        given |= set(re.findall(r'reason="(\w+)"', path.read_text(encoding="utf-8")))
    given |= {reason for _, reason in _MESSAGES.values()}
    assert given and given <= set(Unauthorized.REASONS), given - set(Unauthorized.REASONS)


def test_a_reason_off_the_list_is_counted_as_invalid_not_a_500():
    assert Unauthorized("x", reason="no-such-reason").reason == "invalid"
