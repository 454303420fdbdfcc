"""The service's WSGI entry: every request passes here first.

For every request: a request id, the per-IP limit, CORS, no-cache headers and one JSON
access line. The token routes (api/rtc.py, rtm.py, chat.py, generic.py) are served right
here — authenticate, count the caller, run the contract — with no framework in between;
everything else (health, the OpenAPI document, unknown routes) goes on to Flask.

Why not Flask for the token routes too: a token request's own work (verify a JWT, decide,
sign, log) is ~50 µs, and Flask's request handling around it (context, routing, response
objects, extension hooks) cost several times that. The README's Performance section has the
measurements.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Iterable

from auth import Auth
from errors import MethodNotAllowed, ServiceError

from .cors import Cors
from .limits import RateLimits
from .observability import NO_CACHE, access, app_log, request_id
from .routing import Answer, Request, Route

_NO_CACHE = list(NO_CACHE.items())
_STATUS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
_JSON = ("Content-Type", "application/json")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
# Flask's compact JSON, so both halves of the service answer alike.
_encode = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class Service:
    """What the token routes need, built once per process."""

    auth: Auth
    limits: RateLimits
    cors: Cors
    app_id: str
    app_certificate: str = field(repr=False)
    default_expire: int
    max_body_bytes: int


def json_response(status: int, body: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    data = (_encode(body) + "\n").encode()
    return _STATUS[status], [_JSON, ("Content-Length", str(len(data)))], data


class Front:
    """WSGI middleware in front of Flask: serves the token routes, passes on the rest."""

    def __init__(self, service: Service, routes: Iterable[Route], flask_wsgi: Callable):
        self.service = service
        self.flask_wsgi = flask_wsgi
        self.routes = tuple(routes)
        # The first path segment narrows the search to a route or two.
        self._by_prefix: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_prefix.setdefault(route.rule.split("/")[1].split("<")[0], []).append(route)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        service = self.service
        rid = request_id(environ)
        method = environ["REQUEST_METHOD"]
        # PATH_INFO holds the path's bytes as latin-1; routes match its UTF-8 text.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        extra = [("X-Request-Id", rid), *service.cors.headers(environ), *_NO_CACHE]
        counted = []  # the X-RateLimit-* headers of the last limit counted
        log_lines: list[str] = []  # the request's audit lines, written with its access line
        address = environ.get("REMOTE_ADDR") or "-"
        try:
            found = self._match(path)
            route, args = self._route_for(found, method)
            # A JWT verified before needs no signature check, so both limits can be counted
            # at once (one Redis round trip); any other request is counted per IP first.
            caller = service.auth.verified_before(environ.get("HTTP_AUTHORIZATION")) if route else None
            if caller is not None:
                counted = service.limits.both_hit(address, caller.key)
            else:
                counted = service.limits.per_ip_hit(address)
            if not found:
                return self._pass_on(environ, start_response, extra + counted, (method, path, started, rid, address))
            request = Request(environ, rid, service, log_lines)
            request.caller = caller
            status, headers, body, by_user = self._serve(request, [r for r, _ in found], route, args)
            counted = by_user or counted
        except ServiceError as e:
            status, headers, body = json_response(e.status, e.body())
            headers += e.headers.items()
            if "X-RateLimit-Limit" in e.headers:  # a 429 says which limit it was
                counted = []
        except Exception as e:  # a bug: logged with the request id, answered without details
            app_log.error("unhandled error", exc_info=e, extra={"fields": {"request_id": rid}})
            status, headers, body = json_response(500, {"error": f"internal error (request id {rid})",
                                                        "code": "500"})
        start_response(status, headers + counted + extra)
        access(method, path, int(status[:3]), started, rid, address, log_lines)
        return [b"" if method == "HEAD" else body]

    @staticmethod
    def _route_for(found: list[tuple[Route, dict]], method: str) -> tuple[Route | None, dict]:
        for route, args in found:
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, args
        return None, {}

    def _serve(self, request: Request, routes: list[Route], route: Route | None, args: dict):
        """A token route: authenticate, count the caller, run the contract; the response, and the
        caller's X-RateLimit-* headers when counted here."""
        if route is None:
            methods = {r.method for r in routes} | {"OPTIONS"}
            allow = ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
            if request.method == "OPTIONS":  # a CORS preflight, or a client asking what it may send
                return "200 OK", [("Allow", allow), ("Content-Length", "0")], b"", []
            raise MethodNotAllowed("method not allowed on this route", headers={"Allow": allow})
        by_user = []
        if request.caller is None:
            service = self.service
            request.caller = service.auth.authenticate(request.environ.get("HTTP_AUTHORIZATION"))
            by_user = service.limits.per_user_hit(request.caller.key)
        return (*self._answer(route.view(request, **args)), by_user)

    def _match(self, path: str) -> list[tuple[Route, dict[str, str]]]:
        """The routes whose rule fits the path (one, or a few that differ in method), each with
        the path's parts as its rule names them."""
        candidates = self._by_prefix.get(path.split("/", 2)[1] if path.startswith("/") else "")
        if not candidates:
            return []
        matched = [(route, route.match(path)) for route in candidates]
        return [(route, args) for route, args in matched if args is not None]

    @staticmethod
    def _answer(answer: Answer) -> tuple[str, list[tuple[str, str]], bytes]:
        if isinstance(answer.body, str):
            data = answer.body.encode()
            status, headers = "200 OK", [_TEXT, ("Content-Length", str(len(data)))]
        else:
            status, headers, data = json_response(200, answer.body)
        headers.append(("X-Token-Expire", str(answer.expire)))
        return status, headers, data

    def _pass_on(self, environ, start_response, extra, line) -> Iterable[bytes]:
        """Flask serves it; our headers join its response and the access line gets its status.
        ``line``: the access line's method, path, start, request id and client."""
        seen = []

        def start(status: str, headers: list, exc_info: Any = None):
            seen.append(int(status[:3]))
            return start_response(status, headers + extra, exc_info)

        result = self.flask_wsgi(environ, start)
        method, path, started, rid, address = line
        access(method, path, seen[-1] if seen else 500, started, rid, address)
        return result
