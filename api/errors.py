"""Errors on the routes Flask serves, in the shape api/front.py gives the token routes'.

``{"error": "...", "code": "<status>"}``: ``ServiceError`` subclasses carry their own status
and headers; Werkzeug's HTTP exceptions (404 for an unknown route, 405 on /ping, /healthz and
/openapi.json) are mapped to the same shape. Anything else is a bug: it is logged with the
request id and answered as a JSON 500 that reveals nothing.
"""
from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from errors import ServiceError

from .observability import app_log, request_id

_MESSAGES = {
    400: "the request is malformed",
    404: "no such route",
    405: "method not allowed on this route",
    413: "the request body is too large",
    415: "unsupported media type",
    429: "too many requests",
}


def error_response(status: int, message: str, headers: dict | None = None):
    response = jsonify({"error": message, "code": str(status)})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(e: ServiceError):
        return error_response(e.status, e.message, e.headers)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        status = e.code or 500
        message = _MESSAGES.get(status) or (e.name or "error").lower()
        headers = {k: v for k, v in e.get_headers() if k.lower() in ("allow", "retry-after")}
        return error_response(status, message, headers)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        rid = request_id(request.environ)
        app_log.error("unhandled error", exc_info=e, extra={"fields": {"request_id": rid}})
        return error_response(500, f"internal error (request id {rid})")
