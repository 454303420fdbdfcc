"""Rate limits with the real processes, set up the way the README's "Rate limits" section says.

One Redis; two service instances (as on two machines), each the Procfile's gunicorn with two
workers; a third instance behind a real nginx with TRUSTED_PROXIES=1. Redis is killed and
restarted last, under load.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import BASE_ENV
from tests.credentials import sign_jwt
from tests.nginx import get_from, nginx
from tools.procs import gunicorn, redis_server

pytestmark = pytest.mark.integration

LIMIT = 10


def bearer(sub: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign_jwt(sub, groups=["ops"])}


def burst(services, n: int, headers: dict, path: str = "/rtm/bob/") -> list[requests.Response]:
    """``n`` requests spread over ``services``, eight at a time so that every worker takes some."""
    urls = [services[i % len(services)].url + path for i in range(n)]
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda url: requests.get(url, headers=headers, timeout=10), urls))


def tally(responses) -> Counter:
    return Counter(r.status_code for r in responses)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def instances(redis, tmp_path_factory):
    logs = tmp_path_factory.mktemp("instances")
    env = {**BASE_ENV, "RATE_LIMIT_PER_USER": f"{LIMIT}/minute", "RATE_LIMIT_PER_IP": "100000/minute",
           "RATELIMIT_STORAGE_URI": redis.url,
           # the exact shared counts below hold only while no worker falls back to its memory: a
           # read that a busy machine delays past the shipped 0.3 s would make it fall back
           "RATELIMIT_STORAGE_OPTIONS": json.dumps({"socket_timeout": 3})}
    with gunicorn(env, workers=2, log_path=logs / "a.log") as a, \
            gunicorn(env, workers=2, log_path=logs / "b.log") as b:
        a.log_path, b.log_path = logs / "a.log", logs / "b.log"
        yield a, b


@pytest.fixture(scope="module")
def nginx_port(redis, tmp_path_factory):
    env = {**BASE_ENV, "RATE_LIMIT_PER_USER": "100000/minute", "RATE_LIMIT_PER_IP": f"{LIMIT}/minute",
           "TRUSTED_PROXIES": "1", "RATELIMIT_STORAGE_URI": redis.url}
    with gunicorn(env, workers=2) as service, nginx(service.port, tmp_path_factory.mktemp("nginx")) as port:
        yield port


def test_one_user_gets_exactly_its_limit_across_instances_and_workers(instances):
    assert tally(burst(instances, 3 * LIMIT, bearer("alice"))) == {200: LIMIT, 429: 2 * LIMIT}
    assert tally(burst(instances, LIMIT, bearer("bob"))) == {200: LIMIT}


def test_client_addresses_behind_nginx_have_separate_buckets(nginx_port):
    plain = [get_from("127.0.0.2", nginx_port, "/ping")[0] for _ in range(2 * LIMIT)]
    assert plain == [200] * LIMIT + [429] * LIMIT
    # 127.0.0.3 has a bucket of its own, and every forged X-Forwarded-For falls into it
    forged = [get_from("127.0.0.3", nginx_port, "/rtm/bob/", {"Authorization": "Bearer not-a-jwt",
                                                              "X-Forwarded-For": f"198.51.100.{i}"})
              for i in range(2 * LIMIT)]
    assert [status for status, _, _ in forged] == [401] * LIMIT + [429] * LIMIT
    _, headers, body = forged[-1]
    assert body == {"error": "too many requests", "code": "429"}
    assert int(headers["Retry-After"]) > 0 and headers["X-RateLimit-Limit"] == str(LIMIT)


def test_redis_killed_mid_test_changes_nothing_a_client_sees_but_the_counting(instances, redis):
    assert tally(burst(instances, LIMIT // 2, bearer("carol"))) == {200: LIMIT // 2}
    redis.kill()
    during = burst(instances, 2 * LIMIT, bearer("carol"))
    assert max(r.elapsed.total_seconds() for r in during) < 2.5  # refused at once: no socket timeout waited
    assert set(tally(during)) <= {200, 429} and tally(during)[200] >= LIMIT // 2  # counted per worker now
    for r in during:
        assert "rtmToken" in r.json() if r.status_code == 200 else r.json()["code"] == "429"
        assert "X-RateLimit-Limit" in r.headers
    assert {r.json()["rate_limit_storage"] for r in burst(instances, 8, {}, "/healthz")} == {"degraded"}

    redis.start()
    deadline, healthy_rounds = time.monotonic() + 90, 0  # the probes' back-off alone adds up to 31 s
    while healthy_rounds < 3:  # api/limits.py probes the storage again after 1, 2, 4, ... s
        assert time.monotonic() < deadline, "the service never went back to Redis"
        reports = {r.json()["rate_limit_storage"] for r in burst(instances, 8, {}, "/healthz")}
        healthy_rounds = healthy_rounds + 1 if reports == {"ok"} else 0
        time.sleep(0.2)
    assert tally(burst(instances, 3 * LIMIT, bearer("dave"))) == {200: LIMIT, 429: 2 * LIMIT}

    for service in instances:  # once per worker and transition, not once per request
        log = service.log_path.read_text()
        assert 1 <= log.count("rate limit storage unreachable") <= 2
        assert log.count("rate limit storage is back") == log.count("rate limit storage unreachable")
