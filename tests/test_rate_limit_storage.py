"""The limits in a real Redis and in memory, through the app: the same counts, headers and refusals.

Which requests count, and in what order, is in test_rate_limits.py; this file pins what the
storage does: several limits at once, flask-limiter's key prefix and Retry-After format, a
password and a database number in the URI, a Redis that restarts or turns read-only.
"""
from __future__ import annotations

import subprocess
import time

import pytest
import redis

from app import create_app
from auth.models import Identity
from tests.credentials import ISSUER
from tools.procs import RedisServer, ensure_installed, free_port, redis_server, stop, wait_for_port


@pytest.fixture(scope="module")
def redis_srv(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def storage(request):
    """The storage URI; only the Redis variant starts a redis-server (and is an integration test)."""
    if request.param == "redis":
        redis_srv = request.getfixturevalue("redis_srv")
        redis.Redis.from_url(redis_srv.url).flushall()
        return redis_srv.url
    return "memory://"


@pytest.fixture
def service(env, bearer):
    """``service(storage, **settings)``: a function that sends one request as ``who`` and returns it."""
    def build(storage: str, **settings):
        client = create_app({**env, "RATELIMIT_STORAGE_URI": storage, **settings}).test_client()

        def send(who: str = "alice", path: str = "/rtm/bob/", address: str = "192.0.2.1"):
            return client.get(path, headers=bearer(who), environ_base={"REMOTE_ADDR": address})
        send.client = client
        return send
    return build


def limit_of(response) -> tuple[str, str]:
    return response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]


def test_several_limits_count_together_and_the_one_exceeded_is_reported(service, storage):
    send = service(storage, RATE_LIMIT_PER_USER="3/minute; 2/hour")
    assert limit_of(send()) == ("3", "2")  # the shortest window's
    assert send().status_code == 200
    refused = send()
    assert refused.status_code == 429 and limit_of(refused) == ("2", "0")  # the one exceeded
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert time.time() < int(refused.headers["X-RateLimit-Reset"]) <= time.time() + 3601


def test_past_an_exceeded_address_limit_no_caller_is_counted(service, storage):
    send = service(storage, RATE_LIMIT_PER_IP="2/minute", RATE_LIMIT_PER_USER="5/minute")
    assert limit_of(send()) == ("5", "4")  # the caller's, counted after the address's
    send()
    refused = send()
    assert refused.status_code == 429 and refused.headers["X-RateLimit-Limit"] == "2"  # the address's
    # alice was counted twice, not three times: from another address she has 2 left after this one
    assert limit_of(send(address="192.0.2.2")) == ("5", "2")


@pytest.mark.integration
def test_key_prefix_and_http_date_retry_after(service, redis_srv):
    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    send = service(redis_srv.url, RATE_LIMIT_PER_IP="1/minute", RATELIMIT_KEY_PREFIX="tokens",
                   RATELIMIT_HEADER_RETRY_AFTER_VALUE="http-date")
    assert send(path="/ping").status_code == 200
    assert [k.decode() for k in client.scan_iter("*")] == ["LIMITS:LIMITER/tokens/192.0.2.1/ip/1/1/minute"]
    refused = send(path="/ping")
    assert refused.status_code == 429 and refused.headers["Retry-After"].endswith(" GMT")


@pytest.mark.integration
def test_a_redis_with_a_password_and_a_database_number(service, tmp_path):
    port = free_port()
    proc = subprocess.Popen([ensure_installed("redis-server", "redis-server"), "--bind", "127.0.0.1",
                             "--port", str(port), "--save", "", "--requirepass", "s3cret p@ss",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, proc=proc)
        send = service(f"redis://:s3cret%20p%40ss@127.0.0.1:{port}/3", RATE_LIMIT_PER_USER="2/minute")
        assert [send("carol").status_code for _ in range(3)] == [200, 200, 429]
        client = redis.Redis(port=port, password="s3cret p@ss", db=3)
        carol = Identity(subject="carol", issuer=ISSUER).key
        assert f"LIMITS:LIMITER/{carol}/user/2/1/minute" in {k.decode() for k in client.scan_iter("*")}
        assert send.client.get("/healthz").json["rate_limit_storage"] == "ok"
        wrong = service(f"redis://:wrong@127.0.0.1:{port}/3", RATE_LIMIT_PER_USER="2/minute")
        assert [wrong("carol").status_code for _ in range(3)] == [200, 200, 429]  # in memory, no 5xx
        assert wrong.client.get("/healthz").json["rate_limit_storage"] == "degraded"
    finally:
        stop(proc)


def test_headers_off_means_none_even_on_a_429(service, storage):
    send = service(storage, RATE_LIMIT_PER_IP="1/minute", RATELIMIT_HEADERS_ENABLED="false")
    assert "X-RateLimit-Limit" not in send(path="/ping").headers
    refused = send(path="/ping")
    assert refused.status_code == 429
    assert not {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"} & set(refused.headers.keys())


@pytest.mark.integration
def test_a_restarted_redis_is_used_again_at_once(service, redis_srv):
    send = service(redis_srv.url, RATE_LIMIT_PER_USER="5/minute")
    for _ in range(3):
        send("erin")  # leaves idle connections behind
    redis_srv.kill()
    redis_srv.start()  # empty, on the same port: every idle connection is dead
    assert limit_of(send("erin")) == ("5", "4")  # counted anew, in Redis (redis-py retries a dead connection)
    assert send.client.get("/healthz").json["rate_limit_storage"] == "ok"


@pytest.mark.integration
def test_a_read_only_redis_never_fails_a_request(service, redis_srv):
    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    send = service(redis_srv.url, RATE_LIMIT_PER_USER="100/minute")
    assert send("frank").status_code == 200
    client.replicaof("127.0.0.1", 1)  # a replica: READONLY to writes, PING still answers
    try:
        assert [send("frank").status_code for _ in range(5)] == [200] * 5  # counted in memory
        assert send.client.get("/healthz").json["rate_limit_storage"] == "degraded"
    finally:
        client.replicaof("no", "one")


@pytest.mark.integration
def test_a_storage_that_comes_back_is_used_again(service, tmp_path):
    server = RedisServer(tmp_path, port=free_port())  # not started yet: refused
    send = service(server.url, RATE_LIMIT_PER_USER="50/minute")
    assert send("gina").status_code == 200
    assert send.client.get("/healthz").json["rate_limit_storage"] == "degraded"
    server.start()
    try:
        deadline = time.monotonic() + 60  # flask-limiter tries the storage again after 1, 2, 4 … 32 s
        while send.client.get("/healthz").json["rate_limit_storage"] == "degraded":
            assert time.monotonic() < deadline, "the storage was not tried again"
            send("gina")
            time.sleep(0.2)
        assert redis.Redis.from_url(server.url).dbsize() > 0  # counting in Redis again
    finally:
        server.kill()


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_a_caller_name_utf8_cannot_hold_is_counted_like_any_other(service, storage, strategy):
    send = service(storage, RATE_LIMIT_PER_USER="2/minute", RATELIMIT_STRATEGY=strategy,
                   RATELIMIT_IN_MEMORY_FALLBACK_ENABLED="false")  # a storage error would be a 500
    who = "ops-\ud800"  # a lone surrogate: legal in a JWT's JSON
    assert [send(who).status_code for _ in range(3)] == [200, 200, 429]
    assert send(who + "x").status_code == 200  # a bucket of its own
    # the 12 characters a UTF-8 escape of the surrogate would write are another caller
    assert send("ops-" + "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")).status_code == 200
