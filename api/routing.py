"""The token contracts' routes and the request they see, without a web framework.

Each product module declares its routes on a ``Routes`` table, in Flask's rule syntax::

    routes = Routes("rtc")

    @routes.get("/rtc/<channel>/<role>/<token_type>/<uid>/", strict_slashes=False)
    def rtc_token(request, channel, role, token_type, uid): ...

A view receives a ``Request`` and the path's parts, and returns ``Answer``: a JSON object (or
the token as plain text) and the lifetime granted. api/front.py serves these routes; Flask
serves the operational ones (health, the OpenAPI document).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import parse_qsl

_PART = re.compile(r"<([a-z_]+)>")


@dataclass(frozen=True)
class Answer:
    body: Mapping[str, Any] | str  # a JSON object, or plain text
    expire: int  # X-Token-Expire: the lifetime granted


@dataclass(frozen=True)
class Route:
    rule: str
    method: str
    view: Callable[..., Answer]
    pattern: re.Pattern
    endpoint: str

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _compile(rule: str, strict_slashes: bool) -> re.Pattern:
    """A Flask rule as a regular expression: each ``<part>`` is one non-empty path segment."""
    pattern, end = "", 0
    for part in _PART.finditer(rule):
        pattern += re.escape(rule[end:part.start()]) + f"(?P<{part.group(1)}>[^/]+)"
        end = part.end()
    pattern += re.escape(rule[end:])
    if not strict_slashes and rule.endswith("/"):
        pattern += "?"
    return re.compile(pattern)


class Routes:
    """A product's routes, declared like a Flask blueprint's."""

    def __init__(self, name: str):
        self.name = name
        self.routes: list[Route] = []

    def route(self, method: str, rule: str, strict_slashes: bool = True):
        def register(view: Callable[..., Answer]) -> Callable[..., Answer]:
            self.routes.append(Route(rule, method, view, _compile(rule, strict_slashes),
                                     f"{self.name}.{view.__name__}"))
            return view
        return register

    def get(self, rule: str, strict_slashes: bool = True):
        return self.route("GET", rule, strict_slashes)

    def post(self, rule: str, strict_slashes: bool = True):
        return self.route("POST", rule, strict_slashes)

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)


class Request:
    """What a view may read of the request: query parameters, headers and the body."""

    __slots__ = ("environ", "request_id", "client", "service", "caller", "log_lines", "_args")

    def __init__(self, environ: dict, request_id: str, service: Any, log_lines: list[str]):
        self.environ = environ
        self.request_id = request_id
        self.client = environ.get("REMOTE_ADDR") or "-"
        self.service = service
        self.caller: Any = None  # the verified Identity, on token routes
        self.log_lines = log_lines  # audit lines, written with the access line
        self._args: dict[str, str] | None = None

    @property
    def method(self) -> str:
        return self.environ["REQUEST_METHOD"]

    @property
    def args(self) -> Mapping[str, str]:
        """The query string's parameters (the first value of each, as Flask's ``request.args.get``)."""
        if self._args is None:
            args: dict[str, str] = {}
            query = self.environ.get("QUERY_STRING", "")
            if query:  # WSGI hands over the bytes as latin-1; raw UTF-8 in them is UTF-8
                query = query.encode("latin-1").decode("utf-8", "replace")
                for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
                    args.setdefault(name, value)
            self._args = args
        return self._args

    def header(self, name: str) -> str | None:
        """A request header, by its name as sent (``Content-Type``, ``X-Request-Id``)."""
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        return self.environ.get(key)
