"""The service's one exception hierarchy.

Every refusal the service makes is a ``ServiceError`` subclass raised where the problem is
found; api/errors.py turns it into the JSON
body ``{"error": "<what is wrong>", "code": "<status>"}``. Views never build error responses by
hand, and third-party exceptions are wrapped at the boundary (``raise Unauthorized(...) from e``).
"""
from __future__ import annotations


def error_body(status: int, message: str) -> dict[str, str]:
    """The JSON body of every error the service answers."""
    return {"error": message, "code": str(status)}


class ServiceError(Exception):
    """A refusal with an HTTP status and a message the client can act on."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return error_body(self.status, self.message)


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    """401 with an RFC 6750 challenge.

    ``token_given`` says whether the client presented a bearer token at all: RFC 6750 asks for
    ``error="invalid_token"`` only then (a request without credentials gets a bare challenge).
    ``reason`` is one of ``REASONS``, for the metrics.
    """

    status = 401
    realm = "agora-token-server"
    REASONS = ("missing", "malformed", "bad_signature", "expired", "issuer", "audience", "unknown_key",
               "invalid")

    def __init__(self, message: str, *, token_given: bool = True, reason: str | None = None):
        challenge = f'Bearer realm="{self.realm}"'
        if token_given:
            safe = message.replace("\\", "").replace('"', "'")
            challenge += f', error="invalid_token", error_description="{safe}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})
        self.token_given = token_given
        self.reason = reason or ("invalid" if token_given else "missing")


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class MethodNotAllowed(ServiceError):
    status = 405


class RequestTimeout(ServiceError):
    status = 408


class PayloadTooLarge(ServiceError):
    status = 413


class TooManyRequests(ServiceError):
    status = 429


class ServiceUnavailable(ServiceError):
    status = 503
