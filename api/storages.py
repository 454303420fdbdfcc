"""Two limits storages for flask-limiter's fixed window, registered under schemes of our own
(limits' documented way to add a storage: a ``Storage`` subclass naming its ``STORAGE_SCHEME``).

api/limits.py picks them when the strategy is the fixed window (the default); with any other
strategy the operator's URI goes to limits unchanged. Measured effect: docs/performance.md.

- ``worker-memory://`` stands in for ``memory://``. limits' ``MemoryStorage`` expires keys
  from a ``threading.Timer`` that it starts again on every increment once the previous one has
  fired; under gevent every timer is a greenlet, and a busy worker spent about a tenth of its
  time creating and running them. Here a key read or counted after its window ends starts again
  from zero, and the keys nobody touches again are swept from a heap of window ends as counting
  goes on, so memory stays bounded by the keys of the current windows. Like every in-memory
  storage it counts per worker. flask-limiter's own fallback for a failing Redis stays limits'.
- ``windows+redis://`` (and ``windows+`` every other Redis or Valkey scheme) is limits' storage
  for the rest of the URI, plus what this worker already knows about each window. flask-limiter
  reads a window's count and end for the ``X-RateLimit-*`` headers right after counting the
  request: two more round trips (GET and TTL) after the increment's one. Within a request, the
  count is the one the request's own increment returned; a window's end is known from the
  increment that opened it (the script sets its expiry then) or from one TTL read, and holds
  until it passes. So a token request costs two round trips: the address's increment and the
  caller's. A ``clear`` or ``reset`` from another process is seen once the remembered end has
  passed: the headers may name the old end until then; the counting itself is Redis's.
"""
from __future__ import annotations

import heapq
import threading
import time
from typing import cast

from flask import g, has_request_context
from limits.storage import Storage, storage_from_string

WORKER_MEMORY = "worker-memory"
WINDOWS = "windows+"  # + the scheme of a limits storage
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster", "valkey", "valkeys",
                 "valkey+unix", "valkey+sentinel", "valkey+cluster")
# Window ends remembered per worker by windows+: a bound on memory, not on correctness (a key
# not remembered costs one TTL read per request).
REMEMBERED_WINDOWS = 65_536
COUNTS = "rate_limit_counts"  # flask.g: key -> what this request's increment of it returned


class Windows:
    """``key -> when its window ends`` (and its count, for a storage that counts), forgetting
    each key once its window has passed."""

    def __init__(self, limit: int | None = None):
        # A lock, not bare dicts: gunicorn's gthread and sync workers may count from threads
        # (under gevent it is never contended: nothing here yields).
        self.lock = threading.Lock()
        self.ends: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._heap: list[tuple[float, str]] = []  # may hold stale entries: a key's older ends
        self._limit = limit

    def sweep(self, now: float) -> None:
        """Forget the windows that ended by ``now`` (the lock is held)."""
        heap, ends = self._heap, self.ends
        while heap and heap[0][0] <= now:
            end, key = heapq.heappop(heap)
            if ends.get(key) == end:  # else the key has a newer window
                del ends[key]
                self.counts.pop(key, None)

    def open(self, key: str, end: float) -> bool:
        """Remember that ``key``'s window ends at ``end``, if there is room (the lock is held)."""
        if self._limit is not None and len(self.ends) >= self._limit and key not in self.ends:
            return False
        self.ends[key] = end
        heapq.heappush(self._heap, (end, key))
        return True

    def end(self, key: str, now: float) -> float | None:
        """When ``key``'s window ends, if it is known and still to come."""
        end = self.ends.get(key)
        return end if end is not None and end > now else None

    def forget(self, key: str) -> None:
        with self.lock:
            self.ends.pop(key, None)
            self.counts.pop(key, None)

    def forget_all(self) -> int:
        with self.lock:
            count = len(self.ends)
            self.ends.clear()
            self.counts.clear()
            self._heap.clear()
            return count


class WorkerMemoryStorage(Storage):
    """Fixed-window counters in this worker's memory, expired without timers."""

    STORAGE_SCHEME = [WORKER_MEMORY]  # noqa: RUF012 (limits' registration API: Storage.STORAGE_SCHEME is a list)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: object):
        self._windows = Windows()
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        windows = self._windows
        with windows.lock:
            windows.sweep(now)
            if windows.end(key, now) is None:
                windows.open(key, now + expiry)
                count = amount
            else:
                count = windows.counts[key] + amount
            windows.counts[key] = count
            return count

    def get(self, key: str) -> int:
        windows = self._windows
        return windows.counts.get(key, 0) if windows.end(key, time.time()) else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        return self._windows.end(key, now) or now

    def clear(self, key: str) -> None:
        self._windows.forget(key)

    def reset(self) -> int | None:
        return self._windows.forget_all()

    def check(self) -> bool:
        return True


class WindowsStorage(Storage):
    """limits' storage for the URI after ``windows+``, with the fixed window's reads answered
    from what this worker already knows (see the module's text)."""

    STORAGE_SCHEME = [WINDOWS + scheme for scheme in REDIS_SCHEMES]  # noqa: RUF012 (as above)

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: float | str | bool):  # limits' types
        backend = storage_from_string(uri.removeprefix(WINDOWS), wrap_exceptions=wrap_exceptions, **options)
        # Typed as a sync or an async storage; the rest of the URI is one of REDIS_SCHEMES (see
        # STORAGE_SCHEME), each a sync storage (limits names its async ones "async+...").
        self.backend = cast(Storage, backend)
        self._windows = Windows(REMEMBERED_WINDOWS)
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return self.backend.base_exceptions

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count = self.backend.incr(key, expiry, amount)
        now = time.time()
        windows = self._windows
        with windows.lock:
            windows.sweep(now)
            if count == amount:  # this increment opened the window, and its script set the expiry
                windows.open(key, now + expiry)
        if has_request_context():
            g.setdefault(COUNTS, {})[key] = count
        return count

    def get(self, key: str) -> int:
        if has_request_context():
            count = g.get(COUNTS, {}).get(key)
            if count is not None:
                return count
        return self.backend.get(key)

    def get_expiry(self, key: str) -> float:
        now = time.time()
        windows = self._windows
        end = windows.end(key, now)
        if end is None:
            end = self.backend.get_expiry(key)
            if end > now + 1:  # the key exists (limits answers "now" for a missing one)
                with windows.lock:
                    windows.open(key, end)
        return end

    def clear(self, key: str) -> None:
        self._windows.forget(key)
        self.backend.clear(key)

    def reset(self) -> int | None:
        self._windows.forget_all()
        return self.backend.reset()

    def check(self) -> bool:
        return self.backend.check()
