"""The refusals the service answers over HTTP: ``ServiceError`` and one subclass per status.

Each is raised where the problem is found, with a message the client can act on;
api/error_handlers.py turns it into the JSON body ``{"error": "<what is wrong>", "code":
"<status>"}`` with its headers. Views never build error responses by hand, and third-party
exceptions are wrapped at the boundary (``raise Unauthorized(...) from e``).

Each layer keeps its own exceptions, which never reach a client as they are:

- ``config.names.ConfigError``: a setting is wrong; the service refuses to start (or to
  reload). ``auth.policy_file.PolicyError`` is one, for the policy file, with its line.
- ``auth.patterns.PatternError``: a channel or subject pattern in the policy cannot be used.
- ``tokens.exceptions.TokenError``: bad input to a token builder, or a malformed token.

The contracts validate their input first and raise ``BadRequest``; the signer
(api/extension.py) turns a ``TokenError`` that gets past them into one.
"""
from __future__ import annotations


def error_body(status: int, message: str) -> dict[str, str]:
    """The JSON body of every error the service answers."""
    return {"error": message, "code": str(status)}


class ServiceError(Exception):
    """A refusal with an HTTP status, a message the client can act on, and headers."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    """401: no usable bearer token.

    ``token_given`` says whether the client presented a bearer token at all (RFC 6750 answers
    the two differently; api/error_handlers.py writes the challenge). ``reason`` is one of
    ``REASONS``: the label of the rejection in the metrics, where every one is reported from
    the start (api/metrics.py).
    """

    status = 401
    REASONS = ("missing", "malformed", "bad_signature", "expired", "issuer", "audience", "unknown_key",
               "invalid")

    def __init__(self, message: str, *, token_given: bool = True, reason: str | None = None):
        super().__init__(message)
        self.token_given = token_given
        reason = reason or ("invalid" if token_given else "missing")
        # Never a label outside the list (nor a 500 for a typo): tests/test_exceptions.py checks
        # that every reason the code gives is on it.
        self.reason = reason if reason in self.REASONS else "invalid"


class Forbidden(ServiceError):
    status = 403


class RequestTimeout(ServiceError):
    status = 408


class PayloadTooLarge(ServiceError):
    status = 413


class ServiceUnavailable(ServiceError):
    status = 503
