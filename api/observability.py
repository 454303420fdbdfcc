"""Request ids, one JSON access line per request, one JSON audit line per decision.

Nothing secret is ever logged: no JWT, no Agora token, no certificate, no query string.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from random import getrandbits

from flask import Response, g, request

from auth.models import Identity, PolicyDecision, TokenRequest

access_log = logging.getLogger("agora_token_server.access")
audit_log = logging.getLogger("agora_token_server.audit")
app_log = logging.getLogger("agora_token_server")

# A client's X-Request-Id is kept only when it looks like one (a UUID, a hex or base64url id).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
NO_CACHE = {
    "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "-1",
}


# Built once: json.dumps with keyword arguments builds a new encoder on every call.
_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
# JSON leaves these raw, but log readers (and JavaScript before ES2019) take them for line
# breaks: a path or a claim could split a line in two. Inside a JSON string their escapes
# read back as the same text.
_LINE_BREAKS = {0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\u0085"}


def _encode(entry: dict) -> str:
    line = _json(entry)
    return line if line.isascii() else line.translate(_LINE_BREAKS)


def _entry(created: float, level: str, name: str, message: str, fields: dict) -> dict:
    entry = {"ts": round(created, 3), "level": level, "logger": name, "msg": message}
    entry.update(fields)
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record.created, record.levelname.lower(), record.name, record.getMessage(),
                       getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)


class JsonLineHandler(logging.StreamHandler):
    """Writes each line with one ``write(2)`` on the stream's file descriptor, when it has one.

    A write under the pipe buffer's 4 KiB (a request's lines, but for very long subjects or
    issuers) lands whole even with other workers writing to the same pipe, so no lock is held;
    ``write_line`` is the path api/observability.py's own lines take, with no ``LogRecord`` in
    between. Text the JSON encoder leaves as is but UTF-8 cannot hold (a lone surrogate from a
    JWT claim) is written as its ``\\udXXX`` escape, which JSON reads back as the same string.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.setFormatter(JsonFormatter())
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None

    def write_line(self, line: str) -> None:
        if self.fd is None:
            self.acquire()  # as StreamHandler.flush locks (Handler.lock is typed Optional)
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            finally:
                self.release()
            return
        data = (line + "\n").encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(self.fd, data):]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except Exception:  # noqa: BLE001 (logging.Handler.emit's contract: handleError reports it)
            self.handleError(record)


_root = logging.getLogger("agora_token_server")
_limiter_log = logging.getLogger("flask-limiter")
_handler: list[JsonLineHandler] = []  # the one handler configure_logging installed


def configure_logging(level: str) -> None:
    """Route the service's loggers, and flask-limiter's warnings, to stderr as JSON lines
    (idempotent)."""
    if not _handler:
        _handler.append(JsonLineHandler(sys.stderr))
    for logger in (_root, _limiter_log):
        if _handler[0] not in logger.handlers:
            logger.addHandler(_handler[0])
            logger.propagate = False
    _root.setLevel(level)
    # Its info lines repeat each 429, which the access line already records.
    _limiter_log.setLevel(max(logging.WARNING, logging.getLevelName(level)))


UNROUTED = "unrouted"  # the name of a request no route matched, for the limiter and the metrics
REQUEST_ID_KEY = "agora.request_id"  # where the request id is kept in the WSGI environ


def request_id(environ: dict) -> str:
    """The client's X-Request-Id when it is a sane one, else a new random id; once per request."""
    rid = environ.get(REQUEST_ID_KEY)
    if rid is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        # Unique, not secret: the random module's generator (reseeded in every forked worker).
        rid = environ[REQUEST_ID_KEY] = given if _REQUEST_ID.fullmatch(given) else f"{getrandbits(64):016x}"
    return rid


def _info(logger: logging.Logger, message: str, fields: dict) -> str | None:
    """``logger.info(message, extra={"fields": fields})``, or, while our handler is the only
    one listening, the same JSON line returned for the caller to write (no record, no lock)."""
    if not logger.isEnabledFor(logging.INFO):
        return None
    if not logger.handlers and _root.handlers == _handler:
        return _encode(_entry(time.time(), "info", logger.name, message, fields))
    logger.handle(logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None,
                                    extra={"fields": fields}))
    return None


def audit(caller: Identity, want: TokenRequest, decision: PolicyDecision) -> None:
    """One line per decision; it goes out with the request's access line (one write)."""
    line = _info(audit_log, "token granted" if decision.granted else "token denied", {
        "request_id": request_id(request.environ),
        "subject": caller.subject,
        "issuer": caller.issuer,
        "service": want.service + ("-app" if want.app else ""),
        "channel": want.channel,
        "uid": want.uid if want.service == "rtc" else want.user,
        "role": want.role.name.lower() if want.role is not None else None,
        "lifetime": decision.expire if decision.granted else want.expire,
        "decision": "granted" if decision.granted else "denied",
        "reason": decision.reason,
        "client": request.remote_addr or "-",
    })
    if line is not None:
        g.setdefault("log_lines", []).append(line)


def request_started() -> None:
    """The request's clock (api/extension.py runs it first)."""
    g.started = time.perf_counter()


def elapsed() -> float | None:
    """Seconds since this request's first hook ran (None before it ran)."""
    started = g.get("started")
    return None if started is None else time.perf_counter() - started


def finish(response: Response) -> None:
    """The request's id and no-cache headers, and its access line with its audit lines (the
    last step on every answer: api/extension.py)."""
    rid = request_id(request.environ)
    headers = response.headers
    headers["X-Request-Id"] = rid
    headers.update(NO_CACHE)
    seconds = elapsed()
    line = _info(access_log, "request", {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2) if seconds is not None else None,
        "request_id": rid,
        "client": request.remote_addr or "-",
    })
    lines = g.pop("log_lines", [])
    if line is not None:
        lines.append(line)
    if lines:
        with contextlib.suppress(OSError):  # stderr gone or full: the request is served all the same
            _handler[0].write_line("\n".join(lines))
