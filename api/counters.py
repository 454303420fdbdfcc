"""What the rate limits count with: one counter object per storage, all with one method.

``hit(keys, items)`` counts one request against each limit in turn and stops after the first
one exceeded, returning a ``Count`` per limit counted. ``counter_for`` picks the cheapest
counter for a storage and strategy:

- fixed windows in this process's memory: a dict and a lock;
- fixed windows in Redis: one Lua script call for any number of keys (an address's and its
  user's limits at once), through api/resp.py where it can reach the storage itself;
- anything else ``limits`` supports (moving window, sliding window counter, Sentinel,
  Cluster, memcached, MongoDB): ``limits``' own rate limiters, one limit at a time.
"""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Mapping, NamedTuple, Sequence

from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import STRATEGIES
from redis.exceptions import NoScriptError

from . import resp

# KEYS: one counter per limit (a client address's before its user's, when both are counted at
# once). ARGV: each key's window in ms, then each key's amount. Counts each in turn and stops
# after the first limit exceeded, so past an exceeded address limit no user is counted.
# Returns count and ms left for each key counted.
_REDIS_FIXED_WINDOW = """
local out = {}
local n = #KEYS
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  local left = redis.call('PTTL', KEYS[i])
  if left < 0 then
    left = tonumber(ARGV[i])
    redis.call('PEXPIRE', KEYS[i], left)
  end
  out[#out + 1] = count
  out[#out + 1] = left
  if count > tonumber(ARGV[n + i]) then break end
end
return out
"""


class Count(NamedTuple):
    """One limit after a hit: what the X-RateLimit-* headers say about it."""

    limit: int
    remaining: int
    reset: float  # epoch seconds at which the window starts over

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0


class _MemoryFixedWindow:
    """Fixed windows in this process: one dict entry per key, swept as windows end."""

    batched = True  # an address and its user under one lock

    def __init__(self) -> None:
        self._windows: dict[str, list] = {}  # key -> [count, ends_at]
        self._lock = threading.Lock()
        self._sweep_at = 0.0

    def hit(self, keys: Sequence[str], items: Sequence[RateLimitItem]) -> list[Count]:
        now = time.time()
        out = []
        with self._lock:
            if now >= self._sweep_at:
                self._sweep(now)
            windows = self._windows
            for key, item in zip(keys, items):
                window = windows.get(key)
                if window is None or window[1] <= now:
                    window = windows[key] = [0, now + item.get_expiry()]
                window[0] += 1
                out.append(Count(item.amount, item.amount - window[0], window[1]))
                if window[0] > item.amount:
                    break
        return out

    def _sweep(self, now: float) -> None:
        self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
        self._sweep_at = now + 10.0


class _RedisFixedWindow:
    """Fixed windows in Redis: any number of limits, of one or two callers, in one round trip.

    The script runs by its SHA on a pooled connection, through api/resp.py where it can reach
    the storage itself (redis-py's own call costs several times as much CPU), else through
    redis-py; after a Redis restart forgets the script, the next call sends it whole.
    """

    batched = True  # one round trip however many keys: count an address and its user at once

    def __init__(self, storage: RedisStorage, uri: str, options: Mapping[str, Any]):
        self.storage = storage
        self._sha = hashlib.sha1(_REDIS_FIXED_WINDOW.encode()).hexdigest()
        self._client = resp.ScriptClient(uri, _REDIS_FIXED_WINDOW, self._sha, options) if resp.supports(uri) else None
        self._pool = None if self._client is not None else storage.get_connection().connection_pool

    def hit(self, keys: Sequence[str], items: Sequence[RateLimitItem]) -> list[Count]:
        keys = [self.storage.prefixed_key(key) for key in keys]  # LIMITS:…, as limits names its own
        args = [item.get_expiry() * 1000 for item in items] + [item.amount for item in items]
        raw = self._client.call(keys, args) if self._client is not None else self._eval(keys, args)
        now = time.time()
        return [Count(item.amount, item.amount - int(raw[2 * i]), now + int(raw[2 * i + 1]) / 1000)
                for i, item in enumerate(items[: len(raw) // 2])]

    def _eval(self, keys: Sequence[str], args: list) -> list:
        pool = self._pool
        connection = pool.get_connection()
        try:
            connection.send_command("EVALSHA", self._sha, len(keys), *keys, *args)
            try:
                return connection.read_response()
            except NoScriptError:
                connection.send_command("EVAL", _REDIS_FIXED_WINDOW, len(keys), *keys, *args)
                return connection.read_response()
        except BaseException:
            connection.disconnect()  # in an unknown state: the pool reconnects it next time
            raise
        finally:
            pool.release(connection)


class _Strategy:
    """Any storage and strategy ``limits`` offers, through its own rate limiters."""

    def __init__(self, storage: Storage, strategy: str):
        self.storage = storage
        self.limiter = STRATEGIES[strategy](storage)

    def hit(self, keys: Sequence[str], items: Sequence[RateLimitItem]) -> list[Count]:
        out = []
        for key, item in zip(keys, items):
            allowed = self.limiter.hit(item, key)
            reset, remaining = self.limiter.get_window_stats(item, key)
            out.append(Count(item.amount, remaining if allowed else -1, reset))
            if not allowed:
                break
        return out


def counter_for(storage: Storage, strategy: str, uri: str, options: Mapping[str, Any]):
    if strategy == "fixed-window":
        if isinstance(storage, MemoryStorage):
            return _MemoryFixedWindow()
        if type(storage) is RedisStorage:  # not Sentinel or Cluster, which subclass it
            return _RedisFixedWindow(storage, uri, options)
    return _Strategy(storage, strategy)
