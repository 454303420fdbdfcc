"""exceptions.py: each refusal carries its status; a 401 its reason, from the fixed list the
metrics report."""
from __future__ import annotations

import pytest

import exceptions
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


def test_an_unknown_rejection_reason_is_a_bug_caught_where_it_is_raised():
    with pytest.raises(ValueError, match="unknown rejection reason"):
        Unauthorized("x", reason="no-such-reason")
