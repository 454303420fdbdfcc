"""CORS_ALLOW_ORIGIN: which browser origins may read the service's answers, and flask-cors' keys.

flask-cors compiles any origin string holding one of ``*\\]?$^[]()`` as a regular expression and
matches it with ``re.match``, anchored at the start only; so ``https://*.example.com`` would
allow ``https://xexample.com.attacker.net``, and ``http://[::1]:3000`` would allow
``http://1:3000``. It matches a compiled pattern as given. So every origin reaches it as a
pattern built here: the configured text escaped, anchored at both ends, ASCII-only case folding
(origins are case-insensitive in scheme and host, and a browser sends hosts as ASCII).
"""
from __future__ import annotations

import ipaddress
import re

from .names import CORS_ALLOW_ORIGIN, ConfigError

ANY_ORIGIN = "*"
# Origins are always serialized without their scheme's default port (RFC 6454, WHATWG URL), so
# https://a.com:443 is written as https://a.com: a configured default port is dropped.
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"  # a DNS label: letters, digits, inner hyphens
_FLAGS = re.IGNORECASE | re.ASCII  # without ASCII, IGNORECASE lets U+212A KELVIN SIGN match k
_FORMS = ("write '*' alone, or origins like https://app.example.com, http://localhost:3000 or "
          "https://*.example.com")

# flask-cors' settings, under its own config keys: the origins come from CORS_ALLOW_ORIGIN; a
# browser app may send the JWT and JSON, and must be able to read these response headers.
CORS_CONFIG = {
    "CORS_ALLOW_HEADERS": ["Authorization", "Content-Type"],
    "CORS_EXPOSE_HEADERS": ["Retry-After", "X-Request-Id", "X-Token-Expire", "X-RateLimit-Limit",
                            "X-RateLimit-Remaining", "X-RateLimit-Reset"],
    "CORS_METHODS": ["GET", "POST", "OPTIONS"],
    "CORS_MAX_AGE": 600,
    "CORS_SUPPORTS_CREDENTIALS": False,  # the JWT travels in Authorization, never in cookies
}


def parse_origins(values: tuple[str, ...]) -> tuple[str, ...]:
    """The comma list's items as origins in the form browsers send them, or ``("*",)``."""
    if not values:
        return (ANY_ORIGIN,)
    if ANY_ORIGIN in values and len(values) > 1:
        raise ConfigError(f"{CORS_ALLOW_ORIGIN}: '*' allows every origin, so it must be the whole setting, "
                          f"got {', '.join(values)!r}")
    if values == (ANY_ORIGIN,):
        return values
    out = []
    for value in values:
        try:
            out.append(_origin(value))
        except ValueError as e:
            raise ConfigError(f"{CORS_ALLOW_ORIGIN}: {value!r} {e}; {_FORMS}") from None
    return tuple(out)


def flask_cors_config(origins: tuple[str, ...]) -> dict:
    """flask-cors' keys for ``origins`` (as ``parse_origins`` returns them)."""
    if origins == (ANY_ORIGIN,):
        return {**CORS_CONFIG, "CORS_ORIGINS": [ANY_ORIGIN], "CORS_SEND_WILDCARD": True}
    return {**CORS_CONFIG, "CORS_ORIGINS": [origin_pattern(o) for o in origins], "CORS_SEND_WILDCARD": False}


def origin_pattern(origin: str) -> re.Pattern:
    """The whole-string pattern an origin from ``parse_origins`` stands for: itself exactly, or
    for ``scheme://*.domain[:port]`` one or more labels under domain, same scheme and port."""
    scheme, _, host_port = origin.partition("://")
    if host_port.startswith("*."):
        return re.compile(rf"{re.escape(scheme)}://(?:{_LABEL}\.)+{re.escape(host_port[2:])}\Z", _FLAGS)
    return re.compile(rf"{re.escape(origin)}\Z", _FLAGS)


def _origin(value: str) -> str:
    """``value`` as browsers serialize an origin: scheme and host in lower case, no default port.
    Raises ``ValueError`` saying what is wrong with it."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ValueError("is not an origin (scheme://host[:port])")
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("must have the scheme http or https")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if authority != rest:
        raise ValueError("has a path, query or fragment (even a trailing /): "
                         "an origin is scheme://host[:port]")
    if "@" in authority:
        raise ValueError("has a user part: an origin is scheme://host[:port]")
    bracketed = re.fullmatch(r"\[([^\]]*)\](.*)", authority)
    host, colon, port = bracketed.group(2).partition(":") if bracketed else authority.partition(":")
    if bracketed and host:
        raise ValueError("has text after the IPv6 address")
    host = _ipv6(bracketed.group(1)) if bracketed else _host(host.lower())
    if colon:
        if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError("must have a port between 1 and 65535")
        port = "" if int(port) == DEFAULT_PORTS[scheme] else f":{int(port)}"
    return f"{scheme}://{host}{port}"


def _host(host: str) -> str:
    if host.startswith("*."):
        domain = host[2:]
        if not _is_domain(domain) or "." not in domain:
            raise ValueError("must have a domain of two labels or more after '*.' (https://*.example.com)")
        return host
    if "*" in host:
        raise ValueError("has '*' where only the whole host's first label may be one (https://*.example.com)")
    if _is_domain(host):
        return host
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        raise ValueError("has no valid host: a DNS name of letters, digits and hyphens (IDNs in their "
                         "xn-- form), an IPv4 address or an [IPv6] address") from None


def _is_domain(host: str) -> bool:
    labels = host.split(".")
    # A name whose last label is a number is an IPv4 address to a browser, not a DNS name.
    return (host.isascii() and all(re.fullmatch(_LABEL, label) for label in labels)
            and not labels[-1].isdigit())


def _ipv6(text: str) -> str:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError("has no valid IPv6 address between [ ]") from None
    if address.scope_id:  # browsers refuse a zone (fe80::1%eth0) in a URL
        raise ValueError("has an IPv6 zone, which no browser sends")
    return f"[{address.compressed}]"
