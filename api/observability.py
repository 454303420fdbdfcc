"""Request ids, one JSON access line per request, one JSON audit line per decision.

Nothing secret is ever logged: no JWT, no Agora token, no certificate, no query string.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time

from typing import TYPE_CHECKING

from auth.models import Identity, PolicyDecision, TokenRequest

if TYPE_CHECKING:
    from .routing import Request

access_log = logging.getLogger("agora_token_server.access")
audit_log = logging.getLogger("agora_token_server.audit")
app_log = logging.getLogger("agora_token_server")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
NO_CACHE = {
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "-1",
}


# Built once: json.dumps with keyword arguments builds a new encoder on every call.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)


def configure_logging(level: str) -> None:
    """Route the service's loggers to stderr as JSON lines (idempotent)."""
    root = logging.getLogger("agora_token_server")
    if not any(getattr(h, "_agora_json", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._agora_json = True
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level)


REQUEST_ID_KEY = "agora.request_id"  # where api/front.py keeps it in the WSGI environ


def request_id(environ: dict) -> str:
    """The client's X-Request-Id when it is a sane one, else a new random id; once per request."""
    rid = environ.get(REQUEST_ID_KEY)
    if rid is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = environ[REQUEST_ID_KEY] = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
    return rid


def _info(logger: logging.Logger, message: str, fields: dict) -> None:
    """``logger.info(message, extra={"fields": fields})``, minus the search for the caller's file
    and line, which our lines never show."""
    if logger.isEnabledFor(logging.INFO):
        logger.handle(logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None,
                                        extra={"fields": fields}))


def audit(request: Request, caller: Identity, want: TokenRequest, decision: PolicyDecision) -> None:
    _info(audit_log, "token granted" if decision.granted else "token denied", {
        "request_id": request.request_id,
        "subject": caller.subject,
        "issuer": caller.issuer,
        "service": want.service + ("-app" if want.app else ""),
        "channel": want.channel,
        "uid": want.uid if want.service == "rtc" else want.user,
        "role": want.role.name.lower() if want.role is not None else None,
        "lifetime": decision.expire if decision.granted else want.expire,
        "decision": "granted" if decision.granted else "denied",
        "reason": decision.reason,
        "client": request.client,
    })


def access(method: str, path: str, status: int, started: float, request_id: str, client: str) -> None:
    _info(access_log, "request", {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "request_id": request_id,
        "client": client,
    })
