"""Rate limits counted in a Redis Cluster and behind Redis Sentinel, with the real servers.

Two service instances (two apps, as on two machines) name the same RATELIMIT_STORAGE_URI and
must share each caller's limit exactly. Sentinel's master is then killed: the service keeps
answering (in-memory fallback) and goes back to counting in Redis on the promoted replica.
The failover test changes the topology for good, so it runs last.
"""
from __future__ import annotations

import json
import time

import pytest

from app import create_app
from tests.conftest import BASE_ENV
from tests.credentials import sign_jwt
from tests.redis_topologies import redis_cluster, redis_sentinel

pytestmark = pytest.mark.integration

LIMIT = 5
TOKEN_PATH = "/rtc/room/publisher/uid/7/"
# Five requests alternating between two instances, then one too many: (status, X-RateLimit-Remaining).
SHARED = [(200, "4"), (200, "3"), (200, "2"), (200, "1"), (200, "0"), (429, "0")]
# limits reads X-RateLimit-Remaining and -Reset from a Sentinel's replica by default, which may
# not have the latest count yet (on a busy machine, fresh callers were told "5 left" after three
# hits); the service turns that off (api/limits.py), and an operator may turn it back on.
READ_A_REPLICA = {"RATELIMIT_STORAGE_OPTIONS": json.dumps({"use_replicas": True})}
RECOVERY_TIMEOUT = 40.0  # the failover takes a few seconds; the retry backoff may add up to ~32 s


def instances(uri: str, **settings: str):
    """Two service instances counting in ``uri``: a test client each."""
    env = {**BASE_ENV, "RATE_LIMIT_PER_USER": f"{LIMIT}/minute", "RATELIMIT_STORAGE_URI": uri, **settings}
    return tuple(create_app({**env, "TESTING": True}).test_client() for _ in range(2))


def bearer(sub: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign_jwt(sub, groups=["ops"])}


def alternate(clients, sub: str, n: int) -> list[tuple[int, str | None]]:
    """``n`` token requests by ``sub``, sent to each client in turn."""
    responses = [clients[i % len(clients)].get(TOKEN_PATH, headers=bearer(sub)) for i in range(n)]
    return [(r.status_code, r.headers.get("X-RateLimit-Remaining")) for r in responses]


def storage_health(clients) -> set[str]:
    return {c.get("/healthz").json["rate_limit_storage"] for c in clients}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    with redis_sentinel(tmp_path_factory.mktemp("sentinel")) as topology:
        yield topology


@pytest.mark.parametrize("topology, settings", [("cluster", {}), ("sentinel", {})],
                         ids=["cluster", "sentinel"])
def test_two_instances_share_one_limit_per_user(topology, settings, request):
    a, b = instances(request.getfixturevalue(topology).uri, **settings)
    assert alternate((a, b), f"{topology}-alice", LIMIT + 1) == SHARED
    assert alternate((b, a), f"{topology}-alice", 2) == [(429, "0")] * 2  # refused by either instance
    assert alternate((b, a), f"{topology}-bob", 2) == SHARED[:2]
    assert storage_health((a, b)) == {"ok"}


def test_cluster_spreads_callers_over_its_masters(cluster):
    a, b = instances(cluster.uri)
    callers = 12  # all in one master's slots by chance: 3 in 3**12
    before = cluster.dbsizes()
    for i in range(callers):
        assert alternate((a, b), f"spread-{i}", 1) == SHARED[:1]
    grown = {port: size - before[port] for port, size in cluster.dbsizes().items()}
    assert sum(grown.values()) >= callers, grown  # a counter per caller, at least
    assert sum(1 for n in grown.values() if n > 0) > 1, grown  # in more than one master's slots


def test_sentinel_replica_reads_still_refuse_exactly_at_the_limit(sentinel):
    a, b = instances(sentinel.uri, **READ_A_REPLICA)  # only the headers may lag
    statuses = [status for status, _ in alternate((a, b), "replica-reader", LIMIT + 2)]
    assert statuses == [200] * LIMIT + [429] * 2


def test_sentinel_failover_to_the_replica_keeps_answering_then_shares_again(sentinel):
    a, b = instances(sentinel.uri)
    assert alternate((a, b), "before-failover", 3) == SHARED[:3]
    old_master = sentinel.master_port()

    sentinel.master.kill()
    seen, health, attempt = [], set(), 0
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        # Every request is answered, from memory while Redis is away; a fresh caller whose count
        # goes down across both instances means both count in Redis again.
        seen += alternate((a, b), "during-failover", 2)
        health |= storage_health((a, b))
        recovered = alternate((a, b), f"after-failover-{attempt}", 2)
        seen += recovered
        if recovered == SHARED[:2]:
            break
        assert time.monotonic() < deadline, (
            f"no shared counting {RECOVERY_TIMEOUT}s after the master was killed; Sentinel names "
            f"port {sentinel.master_port()}; health seen {health}; Sentinel's log:\n"
            f"{sentinel.sentinel.log_tail()}")
        attempt += 1
        time.sleep(0.2)

    assert {status for status, _ in seen} <= {200, 429}
    assert sentinel.master_port() == sentinel.replica.port != old_master
    assert alternate((a, b), f"after-failover-{attempt}", LIMIT - 1) == SHARED[2:]
    assert storage_health((a, b)) == {"ok"}
