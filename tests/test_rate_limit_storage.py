"""api/limits.py and api/counters.py against a real Redis and in memory: the same counts, headers and refusals.

The service-level behaviour (which requests count, in what order) is in test_rate_limits.py;
this file pins the counter itself: one Redis round trip for both limits of a returning caller,
a user left alone past an exceeded address limit, and a Redis that forgot the script.
"""
from __future__ import annotations

import time

import pytest
import redis

from api.limits import RateLimits
from errors import TooManyRequests
from tests.procs import redis_server


@pytest.fixture(scope="module")
def redis_srv(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(redis_srv):
    return redis_srv.url


@pytest.fixture(params=["memory", "redis"])
def storage(request, redis_url):
    if request.param == "redis":
        redis.Redis.from_url(redis_url).flushall()
        return redis_url
    return "memory://"


def limits(storage: str, per_ip: str = "100/minute", per_user: str = "100/minute", **options) -> RateLimits:
    return RateLimits(per_ip, per_user, {"RATELIMIT_STORAGE_URI": storage, **options})


def refused(call) -> dict | None:
    """The 429's headers, or None when the call was let through."""
    try:
        call()
    except TooManyRequests as e:
        return e.headers
    return None


def test_several_limits_count_together_and_the_one_exceeded_is_reported(storage):
    counter = limits(storage, per_user="3/minute; 2/hour")
    first = dict(counter.per_user_hit("alice"))
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")  # the tighter
    assert refused(lambda: counter.per_user_hit("alice")) is None
    headers = refused(lambda: counter.per_user_hit("alice"))
    assert headers["X-RateLimit-Limit"] == "2" and headers["X-RateLimit-Remaining"] == "0"
    assert 3500 < int(headers["Retry-After"]) <= 3600
    assert time.time() < int(headers["X-RateLimit-Reset"]) <= time.time() + 3601


def test_both_at_once_counts_the_user_only_below_the_address_limit(storage):
    counter = limits(storage, per_ip="2/minute", per_user="5/minute")
    assert dict(counter.both_hit("192.0.2.1", "alice"))["X-RateLimit-Remaining"] == "4"  # the user's
    counter.both_hit("192.0.2.1", "alice")
    headers = refused(lambda: counter.both_hit("192.0.2.1", "alice"))
    assert headers["X-RateLimit-Limit"] == "2"  # the address's limit, not alice's
    # alice was counted twice, not three times: from another address she has 3 left, then none.
    assert dict(counter.both_hit("192.0.2.2", "alice"))["X-RateLimit-Remaining"] == "2"


def test_both_at_once_is_one_round_trip_on_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    counter = limits(redis_url)
    counter.both_hit("192.0.2.1", "alice")  # loads the script
    client.config_resetstat()
    for _ in range(5):
        counter.both_hit("192.0.2.1", "alice")
    calls = {name: stats["calls"] for name, stats in client.info("commandstats").items()
             if name in ("cmdstat_evalsha", "cmdstat_eval")}
    assert calls == {"cmdstat_evalsha": 5}
    assert 0 < client.pttl(next(iter(client.scan_iter("LIMITS:LIMITER/*user*")))) <= 60_000


def test_a_redis_that_forgot_the_script_is_sent_it_again(redis_url):
    client = redis.Redis.from_url(redis_url)
    counter = limits(redis_url, per_user="3/minute")
    client.flushall()
    counter.per_user_hit("bob")
    client.script_flush()  # what a Redis restart does
    assert dict(counter.per_user_hit("bob"))["X-RateLimit-Remaining"] == "1"
    assert not counter.degraded


def test_key_prefix_and_http_date_retry_after(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    counter = limits(redis_url, per_ip="1/minute", RATELIMIT_KEY_PREFIX="tokens",
                     RATELIMIT_HEADER_RETRY_AFTER_VALUE="http-date")
    counter.per_ip_hit("192.0.2.9")
    assert [k.decode() for k in client.scan_iter("*")] == ["LIMITS:LIMITER/tokens/ip/192.0.2.9/1/1/minute"]
    assert refused(lambda: counter.per_ip_hit("192.0.2.9"))["Retry-After"].endswith(" GMT")


def test_a_redis_with_a_password_and_a_database_number(tmp_path):
    import subprocess

    from tests.procs import ensure_installed, free_port, stop, wait_for_port

    port = free_port()
    proc = subprocess.Popen([ensure_installed("redis-server", "redis-server"), "--bind", "127.0.0.1",
                             "--port", str(port), "--save", "", "--requirepass", "s3cret p@ss",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, proc=proc)
        counter = limits(f"redis://:s3cret%20p%40ss@127.0.0.1:{port}/3", per_user="2/minute")
        counter.per_user_hit("carol")
        client = redis.Redis(port=port, password="s3cret p@ss", db=3)
        assert [k.decode() for k in client.scan_iter("*")] == ["LIMITS:LIMITER//user/carol/2/1/minute"]
        assert refused(lambda: counter.per_user_hit("carol")) is None
        assert refused(lambda: counter.per_user_hit("carol"))["X-RateLimit-Limit"] == "2"
        wrong = limits(f"redis://:wrong@127.0.0.1:{port}/3", RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=False)
        with pytest.raises(redis.RedisError):
            wrong.per_user_hit("carol")
    finally:
        stop(proc)


def test_headers_off_means_none_even_on_a_429(storage):
    counter = limits(storage, per_ip="1/minute", RATELIMIT_HEADERS_ENABLED=False)
    assert counter.per_ip_hit("192.0.2.7") == []
    assert refused(lambda: counter.per_ip_hit("192.0.2.7")) == {}


def test_a_restarted_redis_is_used_again_at_once(redis_srv):
    counter = limits(redis_srv.url, per_user="5/minute")
    for _ in range(3):
        counter.per_user_hit("erin")  # leaves idle connections behind
    redis_srv.kill()
    redis_srv.start()  # empty, on the same port: every idle connection is dead
    assert dict(counter.per_user_hit("erin"))["X-RateLimit-Remaining"] == "4"  # counted anew, in Redis
    assert not counter.degraded


def test_a_redis_that_answers_ping_but_refuses_writes_stays_degraded(redis_srv, caplog):
    import logging

    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    counter = limits(redis_srv.url, per_user="100/minute")
    logger = logging.getLogger("agora_token_server")
    logger.addHandler(caplog.handler)
    try:
        counter.per_user_hit("frank")
        client.replicaof("127.0.0.1", 1)  # a replica: READONLY to writes, PING still answers
        try:
            counter.per_user_hit("frank")  # fails over to memory
            assert counter.degraded
            time.sleep(1.1)
            counter.per_user_hit("frank")  # the probe: the script is refused again
            assert counter.degraded
        finally:
            client.replicaof("no", "one")
        time.sleep(2.1)
        counter.per_user_hit("frank")  # the next probe succeeds
        assert not counter.degraded
    finally:
        logger.removeHandler(caplog.handler)
    # (once each: the records may also reach caplog through the root logger)
    messages = [r.getMessage() for r in {id(r): r for r in caplog.records}.values()]
    assert sum("unreachable" in m for m in messages) == 1 and sum("storage is back" in m for m in messages) == 1


def test_requests_failing_together_do_not_push_the_first_probe_back(tmp_path):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tests.procs import RedisServer, free_port

    server = RedisServer(tmp_path, port=free_port())  # not started: refused
    counter = limits(server.url, per_user="5/minute")
    counter.per_user_hit("gina")  # the first failure: memory from now on, a probe in 1 s
    for _ in range(8):  # requests that were on their way to Redis when it went
        counter._storage_failed(RedisConnectionError("refused"), probe=False)
    server.start()
    try:
        time.sleep(1.1)
        counter.per_user_hit("gina")  # the probe, on time
        assert not counter.degraded
    finally:
        server.kill()


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
def test_a_caller_name_utf8_cannot_hold_is_counted_like_any_other(storage, strategy):
    counter = limits(storage, per_user="2/minute", RATELIMIT_STRATEGY=strategy,
                     RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=False)  # a storage error would raise
    who = "https://idp.test/|ops-\ud800"  # a lone surrogate: legal in a JWT's JSON
    assert dict(counter.per_user_hit(who))["X-RateLimit-Remaining"] == "1"
    counter.per_user_hit(who)
    assert refused(lambda: counter.per_user_hit(who))["X-RateLimit-Limit"] == "2"
    assert dict(counter.per_user_hit(who + "x"))["X-RateLimit-Remaining"] == "1"  # a bucket of its own
