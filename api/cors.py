"""CORS for every response, errors included, so a page can read a 401, 403 or 429.

``CORS_ALLOW_ORIGIN`` lists the origins (``*``: any). A request from an allowed origin gets
``Access-Control-Allow-Origin`` and the headers it may read; a preflight (``OPTIONS`` with
``Access-Control-Request-Method``) also gets the methods and headers it may send and a
ten-minute ``Access-Control-Max-Age``. Any other origin gets no CORS headers, so the browser
refuses the response to the page. Every response says ``Vary: Origin``. Nothing here depends
on credentials: the JWT travels in ``Authorization``, never in cookies.
"""
from __future__ import annotations

from typing import Iterable

EXPOSED_HEADERS = ("Retry-After", "X-Request-Id", "X-Token-Expire", "X-RateLimit-Limit",
                   "X-RateLimit-Remaining", "X-RateLimit-Reset")
ALLOWED_HEADERS = frozenset({"authorization", "content-type"})
ALLOWED_METHODS = "GET, OPTIONS, POST"
MAX_AGE = "600"
VARY = ("Vary", "Origin")


class Cors:
    """The CORS headers for a request, from its ``Origin`` and preflight headers."""

    def __init__(self, origins: Iterable[str]):
        origins = tuple(origins)
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        expose = ("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS))
        # Built once: the answer for an allowed origin is the same list on every request.
        self._any = [("Access-Control-Allow-Origin", "*"), expose, VARY]
        self._each = {o: [("Access-Control-Allow-Origin", o), expose, VARY] for o in self.origins}
        self._none = [VARY]

    def headers(self, environ: dict) -> list[tuple[str, str]]:
        """The CORS headers of the response to this request."""
        origin = environ.get("HTTP_ORIGIN")
        if origin is None:
            return self._none
        found = self._any if self.any_origin else self._each.get(origin, self._none)
        if found is self._none or environ["REQUEST_METHOD"] != "OPTIONS":
            return found
        method = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if method is None:
            return found
        asked = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
        allowed = [h.strip() for h in asked.split(",") if h.strip().lower() in ALLOWED_HEADERS]
        preflight = [("Access-Control-Allow-Methods", ALLOWED_METHODS), ("Access-Control-Max-Age", MAX_AGE)]
        if allowed:
            preflight.append(("Access-Control-Allow-Headers", ", ".join(allowed)))
        return found + preflight
