"""A minimal Redis client for one thing: running a Lua script that answers with integers.

The rate limits call one script per request, so the client's own cost is on every request:
redis-py spends ~30 µs of CPU per call around a ~20 µs round trip (packing through its
encoders, a pool with locks and health checks, a general reply parser, metrics hooks); this
does the same call in a few. It speaks RESP2 over a plain TCP or Unix socket, logs in and
selects the database the URL names, and keeps idle connections for reuse. Anything else
(rediss://, Sentinel, Cluster) stays with redis-py (api/counters.py decides).

Sockets come from the ``socket`` module, so under gunicorn's gevent workers a round trip
yields to the worker's other connections instead of blocking them.
"""
from __future__ import annotations

import socket
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


UNIX_SCHEMES = ("redis+unix", "valkey+unix")
# Connections kept for reuse per process: above the requests a worker has waiting on Redis at
# once under load, so that none is opened and closed per call; more are closed after theirs.
MAX_IDLE = 256


def supports(uri: str) -> bool:
    """Whether ``ScriptClient`` can reach this storage URI itself."""
    return urlsplit(uri).scheme in ("redis", "valkey", *UNIX_SCHEMES)


def _arg(value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def command(*args: Any) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(_arg(a) for a in args)


class ScriptClient:
    """EVALSHA (EVAL when Redis has forgotten the script) on pooled connections."""

    def __init__(self, uri: str, script: str, sha: str, options: Mapping[str, Any]):
        parts = urlsplit(uri)
        self._unix = parts.path if parts.scheme in UNIX_SCHEMES else None
        self._address = (parts.hostname or "localhost", parts.port or 6379)
        path_db = parts.path.strip("/") if self._unix is None else ""
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        # What the URL says wins over the options, as in redis-py (which the other strategies
        # and rediss:// use: every path must reach the same database).
        self._db = int(query.get("db") or path_db or options.get("db") or 0)
        self._username = unquote(parts.username) if parts.username else options.get("username")
        self._password = unquote(parts.password) if parts.password else options.get("password")
        self._timeout = options.get("socket_timeout")
        self._connect_timeout = options.get("socket_connect_timeout", self._timeout)
        self._script = script.encode()
        self._sha = sha.encode()
        self._idle: list[socket.socket] = []

    def call(self, keys: Sequence[str], args: Sequence[Any]) -> list[int]:
        tail = [len(keys), *(k.encode() for k in keys), *args]
        evalsha = command(b"EVALSHA", self._sha, *tail)
        try:
            sock = self._idle.pop()
        except IndexError:
            sock = None
        if sock is not None:
            try:
                return self._run(sock, evalsha, tail)
            except RedisConnectionError:
                # An idle connection Redis (or a proxy, or a NAT) closed meanwhile: the others
                # are most likely gone too, and a new one tells whether Redis itself is. Had
                # the script run and only its reply been lost (a connection dropped in those
                # very microseconds), the retry counts this request twice: one request's worth
                # stricter, never looser.
                self.close_idle()
        return self._run(self._connect(), evalsha, tail)

    def _run(self, sock: socket.socket, evalsha: bytes, tail: list) -> list[int]:
        try:
            sock.sendall(evalsha)
            try:
                reply = _read_integers(sock)
            except NoScriptError:
                sock.sendall(command(b"EVAL", self._script, *tail))
                reply = _read_integers(sock)
        except TimeoutError as e:  # Redis is slow or hung: no second try on another connection
            sock.close()
            raise RedisTimeoutError(f"Redis did not answer in time: {e}") from e
        except OSError as e:  # refused, reset, broken pipe: the connection is gone
            sock.close()
            raise RedisConnectionError(f"Redis connection failed: {e}") from e
        except BaseException:
            sock.close()  # in an unknown state: never reused
            raise
        if len(self._idle) < MAX_IDLE:
            self._idle.append(sock)
        else:
            sock.close()
        return reply

    def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def _connect(self) -> socket.socket:
        try:
            if self._unix is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self._connect_timeout)
                sock.connect(self._unix)
            else:
                sock = socket.create_connection(self._address, timeout=self._connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._timeout)
        except OSError as e:
            raise RedisConnectionError(f"cannot reach Redis: {e}") from e
        try:
            if self._password is not None:
                auth = (b"AUTH", self._username, self._password) if self._username else (b"AUTH", self._password)
                sock.sendall(command(*auth))
                _read_ok(sock)
            if self._db:
                sock.sendall(command(b"SELECT", self._db))
                _read_ok(sock)
        except BaseException:
            sock.close()
            raise
        return sock


def _read_reply(sock: socket.socket) -> list[bytes]:
    """The lines of one reply that is a simple value or an array of simple values."""
    data = b""
    # Redis answers in tens of microseconds, so a read right after sending almost always finds
    # nothing yet. A gevent socket can wait first, on the watcher it keeps, with its timeout,
    # letting the worker's other greenlets run: that saves a read and its exception per call
    # (measured: 6% more requests per second with Redis limits). gevent's own methods, pinned
    # with it in requirements.txt; a plain socket just reads.
    wait = getattr(sock, "_wait", None)
    if wait is not None:
        wait(sock._read_event)
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise RedisConnectionError("Redis closed the connection")
        data += chunk
        if not data.endswith(b"\r\n"):
            continue
        lines = data.split(b"\r\n")[:-1]
        head = lines[0]
        if head[:1] == b"-":
            message = head[1:].decode(errors="replace")
            raise NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
        if head[:1] != b"*" or len(lines) > int(head[1:]):
            return lines


def _read_integers(sock: socket.socket) -> list[int]:
    lines = _read_reply(sock)
    if lines[0][:1] != b"*" or any(line[:1] != b":" for line in lines[1:]):
        raise ResponseError(f"unexpected reply from the rate limit script: {lines[:3]!r}")
    return [int(line[1:]) for line in lines[1:]]


def _read_ok(sock: socket.socket) -> None:
    lines = _read_reply(sock)
    if lines[0] != b"+OK":
        raise ResponseError(f"unexpected reply: {lines[0][:80]!r}")
