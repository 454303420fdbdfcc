"""api/storages.py: the fixed window's storages, on their own and as the app picks them.

What the limits do through the app (counts, headers, refusals, a failing Redis) is pinned for
every storage in test_rate_limit_storage.py and test_rate_limits.py; this file pins what these
storages add: no timers, bounded memory, and no reads after the increment in Redis.
"""
from __future__ import annotations

import threading
import time

import pytest
import redis
from limits.storage import MemoryStorage, RedisStorage

from api.extension import token_server
from api.storages import REMEMBERED_WINDOWS, Windows, WindowsStorage, WorkerMemoryStorage
from app import create_app
from tools.procs import redis_server


class Clock:
    """time.time() for api/storages.py, moved by hand."""

    def __init__(self, monkeypatch):
        self.now = 1_000_000.0
        monkeypatch.setattr("api.storages.time.time", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_worker_memory_counts_one_window_then_starts_again(clock):
    storage = WorkerMemoryStorage()
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.incr("k", 60, amount=5) == 8
    assert storage.get("k") == 8
    assert storage.get_expiry("k") == clock.now + 60
    assert storage.get("other") == 0 and storage.get_expiry("other") == clock.now
    clock.now += 59.9
    assert storage.get("k") == 8 and storage.incr("k", 60) == 9  # the window still runs
    clock.now += 0.1
    assert storage.get("k") == 0  # it has ended, read before anything sweeps it
    assert storage.incr("k", 60) == 1 and storage.get_expiry("k") == clock.now + 60


def test_worker_memory_forgets_every_window_that_ended(clock):
    storage = WorkerMemoryStorage()
    for n in range(10_000):
        storage.incr(f"caller-{n}", 60)
    clock.now += 61
    storage.incr("one more", 60)
    windows = storage._windows
    assert windows.ends.keys() == windows.counts.keys() == {"one more"}


def test_worker_memory_clear_and_reset(clock):
    storage = WorkerMemoryStorage()
    storage.incr("a", 60)
    storage.incr("b", 60)
    storage.clear("a")
    assert storage.get("a") == 0 and storage.get("b") == 1
    assert storage.incr("a", 60) == 1
    assert storage.reset() == 2
    assert storage.get("b") == 0 and storage.check()


def test_worker_memory_starts_no_timer():
    """limits' MemoryStorage starts a timer thread (a greenlet under gevent) to expire keys."""
    before = threading.active_count()
    ours = WorkerMemoryStorage()
    for n in range(100):
        ours.incr(f"k{n}", 1)
    assert threading.active_count() == before
    theirs = MemoryStorage()
    theirs.incr("k", 1)
    assert threading.active_count() > before  # what this test would see if ours started timers


def test_windows_remembers_no_more_than_its_bound():
    windows = Windows(limit=2)
    with windows.lock:
        assert windows.open("a", 10) and windows.open("b", 10)
        assert not windows.open("c", 10)
        assert windows.open("a", 20)  # a known key moves on to its new window
    assert windows.end("a", 0) == 20 and windows.end("c", 0) is None
    assert REMEMBERED_WINDOWS >= 10_000


@pytest.mark.parametrize("settings, chosen", [
    ({}, WorkerMemoryStorage),
    ({"RATELIMIT_STRATEGY": "fixed-window"}, WorkerMemoryStorage),
    ({"RATELIMIT_STRATEGY": "moving-window"}, MemoryStorage),
    ({"RATELIMIT_STRATEGY": "sliding-window-counter"}, MemoryStorage),
    ({"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}, WindowsStorage),
    ({"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0", "RATELIMIT_STRATEGY": "moving-window"}, RedisStorage),
])
def test_the_fixed_window_counts_in_our_storages_and_other_strategies_in_limits(env, settings, chosen):
    app = create_app({**env, **settings})
    assert type(token_server(app).limiter.storage) is chosen


@pytest.fixture(scope="module")
def redis_srv(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


def command_calls(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


@pytest.mark.integration
def test_a_token_request_costs_two_round_trips_and_its_headers_none(redis_srv, env, bearer):
    """The address's increment and the caller's; X-RateLimit-* come from what they returned."""
    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    app = create_app({**env, "RATELIMIT_STORAGE_URI": redis_srv.url, "RATE_LIMIT_PER_USER": "5/minute"})
    http = app.test_client()
    # connecting and loading the scripts happen once per worker, not per request
    http.get("/rtm/bob/", headers=bearer("warm-up"), environ_base={"REMOTE_ADDR": "192.0.2.99"})
    client.config_resetstat()
    answers = [http.get("/rtm/bob/", headers=bearer("alice")) for _ in range(6)]
    calls = command_calls(client)
    calls.pop("config|resetstat", None)
    calls.pop("info", None)
    # each script call is one round trip (limits loads the script once, then calls it by hash)
    trips = calls.pop("evalsha", 0) + calls.pop("eval", 0)
    calls.pop("script|load", None)
    inside_scripts = {calls.pop(name, 0) for name in ("incrby", "expire")}
    assert trips == 12 and calls == {}, calls  # no GET, no TTL
    assert inside_scripts  # (counted by Redis inside the scripts, not round trips)
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    key = next(k for k in client.scan_iter("*") if b"warm-up" not in k and b"192.0.2.99" not in k)
    ttl = client.pttl(key) / 1000
    reset = int(answers[-1].headers["X-RateLimit-Reset"])
    assert reset - 2 <= time.time() + ttl <= reset + 1  # limits' reset_at is the end + 1, truncated


@pytest.mark.integration
def test_a_window_another_worker_opened_is_read_once_then_remembered(redis_srv):
    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    first, second = WindowsStorage("windows+" + redis_srv.url), WindowsStorage("windows+" + redis_srv.url)
    assert first.incr("k", 60) == 1
    client.config_resetstat()
    assert second.incr("k", 60) == 2  # a window second did not open: its end is unknown to it
    end = second.get_expiry("k")
    assert second.get_expiry("k") == end
    assert command_calls(client).get("ttl") == 1  # read once, then remembered
    (stored,) = client.scan_iter("*k")  # limits prefixes its keys
    ttl = client.pttl(stored) / 1000
    assert abs(time.time() + ttl - end) <= 1  # TTL is whole seconds, rounded
    assert second.get("k") == 2  # outside a request: read from Redis
    second.clear("k")
    assert second.get("k") == 0 and second.get_expiry("k") <= time.time() + 1
