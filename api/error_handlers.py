"""The one place errors become responses: ``{"error": "...", "code": "<status>"}``.

``ServiceError`` subclasses (exceptions.py) carry their own status and headers; a 401 gets its
RFC 6750 challenge here. Werkzeug's HTTP exceptions (404 unknown route, 405, a 429 from
flask-limiter) are mapped to the same shape; the headers they carry (``Allow``) stay.
Anything else is a bug: it is logged with the request id and answered as a JSON 500 that
reveals nothing.
"""
from __future__ import annotations

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from exceptions import ServiceError, Unauthorized, error_body

from .observability import app_log, request_id

REALM = "agora-token-server"  # of the 401s' challenge
_MESSAGES = {
    400: "the request is malformed",
    404: "no such route",
    405: "method not allowed on this route",
    413: "the request body is too large",
    429: "too many requests",
}
_KEPT_HEADERS = ("allow", "retry-after")


def error_response(status: int, message: str, headers: dict | None = None):
    response = jsonify(error_body(status, message))
    response.status_code = status
    if headers:
        response.headers.update(headers)
        if "Retry-After" in headers:
            g.retry_after = headers["Retry-After"]  # ours to keep (retry_after_as_meant)
    return response


def retry_after_as_meant(response: Response) -> None:
    """flask-limiter writes its window's Retry-After on every answer when its headers are on.
    A 429 keeps it; an error that set its own (a 503 while the JWKS is away) gets that back;
    anything else has no Retry-After, which means "try again later" to a client."""
    if response.status_code != 429 and "Retry-After" in response.headers:
        own = g.get("retry_after")
        if own is None:
            del response.headers["Retry-After"]
        else:
            response.headers["Retry-After"] = own


def challenge(e: Unauthorized) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 6750): ``error="invalid_token"`` only when
    the client presented a bearer token at all; a request without credentials gets a bare one."""
    value = f'Bearer realm="{REALM}"'
    if e.token_given:
        safe = e.message.replace("\\", "").replace('"', "'")
        value += f', error="invalid_token", error_description="{safe}"'
    return value


def _service_error(e: ServiceError):
    headers = e.headers
    if isinstance(e, Unauthorized):
        headers = {**headers, "WWW-Authenticate": challenge(e)}
    return error_response(e.status, e.message, headers)


def _http_error(e: HTTPException):
    status = e.code or 500
    message = _MESSAGES.get(status) or (e.name or "error").lower()
    headers = {k: v for k, v in e.get_headers() if k.lower() in _KEPT_HEADERS}
    return error_response(status, message, headers)


def _unexpected(e: Exception):
    rid = request_id(request.environ)
    app_log.error("unhandled error", exc_info=e, extra={"fields": {"request_id": rid}})
    return error_response(500, f"internal error (request id {rid})")


def init_app(app: Flask) -> None:
    """Answer every exception as JSON: ours, werkzeug's (404, 405, flask-limiter's 429), and
    any other as a 500 that reveals nothing."""
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
