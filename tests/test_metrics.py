"""GET /metrics: Prometheus' text format, summed over gunicorn's workers, with no label a client
chooses; the multiprocess directory is the gunicorn configuration's to create and clean."""
from __future__ import annotations

import os
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from exceptions import Unauthorized
from tests.conftest import BASE_ENV
from tests.credentials import sign_jwt
from tools.procs import gunicorn


def scrape(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def bearer(sub: str, groups=("ops",), **claims) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign_jwt(sub, groups=list(groups), **claims)}


def test_metrics_are_served_in_prometheus_text_format(client):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    names = {family.name for family in text_string_to_metric_families(r.get_data(as_text=True))}
    assert {"agora_tokens_issued", "agora_policy_decisions", "agora_jwt_rejections", "agora_rate_limited",
            "agora_rate_limit_storage_degraded", "agora_request_duration_seconds"} <= names


def test_every_jwt_rejection_reason_is_a_series_before_the_first_rejection(client):
    samples = scrape(client.get("/metrics").get_data(as_text=True))
    reasons = {dict(labels)["reason"] for name, labels in samples if name == "agora_jwt_rejections_total"}
    assert reasons == set(Unauthorized.REASONS)


def test_metrics_can_be_turned_off(env):
    client = create_app({**env, "METRICS_ENABLED": "false"}).test_client()
    assert client.get("/metrics").status_code == 404


def test_no_label_carries_what_a_client_chose(client):
    chosen = ["zz-subject-7f3", "zz-channel-7f3", "777123", "zz-rtm-7f3", "/zz-path-7f3"]
    client.get("/rtc/zz-channel-7f3/publisher/uid/777123/", headers=bearer("zz-subject-7f3"))
    client.get("/rtm/zz-rtm-7f3/", headers=bearer("zz-subject-7f3", groups=()))
    client.get("/zz-path-7f3")
    client.get("/rtm/x/", headers={"Authorization": "Bearer zz-subject-7f3"})
    text = client.get("/metrics").get_data(as_text=True)
    assert not any(word in text for word in chosen)


def test_in_one_process_each_outcome_is_counted(env):
    client = create_app({**env, "RATE_LIMIT_PER_USER": "2/minute"}).test_client()
    before = scrape(client.get("/metrics").get_data(as_text=True))
    client.get("/rtm/bob/", headers=bearer("m-1"))
    client.get("/rtc/private/publisher/uid/1/", headers=bearer("m-2", groups=()))
    client.get("/rtm/bob/", headers=bearer("m-1"))
    client.get("/rtm/bob/", headers=bearer("m-1"))  # the third in a minute: 429
    client.get("/rtm/bob/")
    after = scrape(client.get("/metrics").get_data(as_text=True))

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert grew("agora_tokens_issued_total", service="rtm", contract="rtm.rtm_token") == 2
    assert grew("agora_policy_decisions_total", outcome="denied", refused="channel") == 1
    assert grew("agora_rate_limited_total", limit="user") == 1
    assert grew("agora_jwt_rejections_total", reason="missing") == 1
    assert grew("agora_request_duration_seconds_count", route="/rtm/<segment:rtm_uid>/", status="2xx") == 2


@pytest.mark.parametrize("headers, reason", [
    ({}, "missing"),
    ({"Authorization": "Basic YTpi"}, "malformed"),
    ({"Authorization": "Bearer not-a-jwt"}, "malformed"),
    ({"Authorization": "Bearer " + sign_jwt("r", exp=int(time.time()) - 600)}, "expired"),
    ({"Authorization": "Bearer " + sign_jwt("r", key="another-secret-that-is-long-enough-0123456789abcdef")},
     "bad_signature"),
    ({"Authorization": "Bearer " + sign_jwt("r", iss="https://elsewhere.test/")}, "issuer"),
    ({"Authorization": "Bearer " + sign_jwt("r", aud="someone-else")}, "audience"),
])
def test_each_jwt_rejection_is_counted_by_its_reason(client, headers, reason):
    before = scrape(client.get("/metrics").get_data(as_text=True))
    assert client.get("/rtm/bob/", headers=headers).status_code == 401
    after = scrape(client.get("/metrics").get_data(as_text=True))
    grown = {labels: after[(name, labels)] - before.get((name, labels), 0) for name, labels in after
             if name == "agora_jwt_rejections_total" and after[(name, labels)] != before.get((name, labels), 0)}
    assert grown == {(("reason", reason),): 1}


def test_jwks_fetches_are_counted_by_result(env):
    from tests.jwtutil import JWKSServer, public_jwk, rsa_key

    key = rsa_key()
    with JWKSServer(public_jwk(key, kid="k1")) as server:
        jwks_env = {k: v for k, v in env.items() if k not in ("JWT_SECRET", "JWT_ALGORITHMS")}
        client = create_app({**jwks_env, "JWT_JWKS_URL": server.url, "JWT_ALGORITHMS": "RS256",
                             "JWT_JWKS_COOLDOWN": "0"}).test_client()
        before = scrape(client.get("/metrics").get_data(as_text=True))
        token = sign_jwt("j", groups=["ops"], key=key, algorithm="RS256", headers={"kid": "k1"})
        assert client.get("/rtm/bob/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        other = sign_jwt("j", groups=["ops"], key=rsa_key(1), algorithm="RS256", headers={"kid": "k2"})
        assert client.get("/rtm/bob/", headers={"Authorization": f"Bearer {other}"}).status_code == 401
        server.stop()
        third = sign_jwt("j", groups=["ops"], key=rsa_key(2), algorithm="RS256", headers={"kid": "k3"})
        assert client.get("/rtm/bob/", headers={"Authorization": f"Bearer {third}"}).status_code == 401
        after = scrape(client.get("/metrics").get_data(as_text=True))
    grew = {result: value(after, "agora_jwks_fetches_total", result=result)
            - value(before, "agora_jwks_fetches_total", result=result) for result in ("changed", "unchanged", "failed")}
    assert grew == {"changed": 1, "unchanged": 1, "failed": 1}


# --- across gunicorn workers ---------------------------------------------------------------

MIX = [  # (how many, method, path, headers or None, body or None)
    (7, "GET", "/rtc/m-room/publisher/uid/5/", "granted", None),
    (5, "GET", "/rtm/m-bob/", "granted", None),
    (3, "POST", "/generate-app-token", "granted", {}),
    (4, "GET", "/rtc/private/publisher/uid/5/", "lobby-only", None),  # denied: channel
    (2, "GET", "/rtc/lobby/publisher/uid/5/", "lobby-only", None),  # denied: role
    (6, "GET", "/rtm/m-bob/", None, None),  # 401: missing
    (3, "GET", "/no/such/route", None, None),  # 404
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    metrics_dir = tmp_path_factory.mktemp("metrics")
    (metrics_dir / "counter_12345.db").write_bytes(b"stale")  # a previous master's leftovers
    env = {**BASE_ENV, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "RATE_LIMIT_PER_USER": "100/minute"}
    with gunicorn(env, workers=2) as service:
        yield service, metrics_dir


@pytest.mark.integration
def test_the_stale_files_of_a_previous_run_are_cleaned_at_start(served):
    _, metrics_dir = served
    assert not (metrics_dir / "counter_12345.db").exists()


def send(service, mix, first_half: bool) -> None:
    headers = {"granted": bearer("mix-ops"), "lobby-only": bearer("mix-guest", groups=())}
    for count, method, path, who, body in mix:
        for _ in range(count // 2 if first_half else count - count // 2):
            # a new connection each time, as separate clients would come
            requests.request(method, service.url + path, headers=headers.get(who, {}), json=body, timeout=10)


def wait_for_new_worker(service, gone: int, workers: int = 2) -> None:
    deadline = time.monotonic() + 15
    while gone in service.worker_pids() or len(service.worker_pids()) < workers:
        assert time.monotonic() < deadline, "gunicorn did not replace the worker"
        time.sleep(0.05)
    service.wait_ready()


@pytest.mark.integration
def test_workers_add_up_to_exactly_the_mix_sent_through_a_restart(served):
    service, metrics_dir = served
    before = scrape(service.get("/metrics").text)
    send(service, MIX, first_half=True)
    # the workers that counted the first half; one is stopped and replaced, and its counts must
    # stay in the totals while other processes count the second half
    counted = {int(f.stem.rsplit("_", 1)[1]) for f in metrics_dir.glob("counter_*.db")}
    assert counted <= set(service.worker_pids())
    stopped = sorted(counted)[0]
    os.kill(stopped, signal.SIGTERM)
    wait_for_new_worker(service, stopped)
    send(service, MIX, first_half=False)
    after = scrape(service.get("/metrics").text)
    processes = {int(f.stem.rsplit("_", 1)[1]) for f in metrics_dir.glob("counter_*.db")}
    assert stopped in processes and len(processes) >= 2  # a stopped worker's counts and others'

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert grew("agora_tokens_issued_total", service="rtc", contract="rtc.rtc_token") == 7
    assert grew("agora_tokens_issued_total", service="rtm", contract="rtm.rtm_token") == 5
    assert grew("agora_tokens_issued_total", service="chat", contract="chat.generate_app_token") == 3
    assert grew("agora_policy_decisions_total", outcome="granted", refused="none") == 15
    assert grew("agora_policy_decisions_total", outcome="denied", refused="channel") == 4
    assert grew("agora_policy_decisions_total", outcome="denied", refused="role") == 2
    assert grew("agora_jwt_rejections_total", reason="missing") == 6
    assert grew("agora_request_duration_seconds_count", route="/rtc/<channel>/<role>/<token_type>/<segment:uid>/",
                status="2xx") == 7
    assert grew("agora_request_duration_seconds_count", route="/rtc/<channel>/<role>/<token_type>/<segment:uid>/",
                status="4xx") == 6
    assert grew("agora_request_duration_seconds_count", route="unrouted", status="4xx") == 3
    assert value(after, "agora_rate_limit_storage_degraded") == 0


@pytest.mark.integration
def test_without_a_directory_gunicorn_makes_one_and_removes_it_on_stop(tmp_path):
    log = tmp_path / "gunicorn.log"
    with gunicorn(dict(BASE_ENV), workers=1, log_path=log) as service:
        assert service.get("/metrics").status_code == 200
        made = log.read_text().split("metrics of all workers in ", 1)[1].split()[0]
        assert os.path.isdir(made) and list(os.scandir(made))  # the worker's files
    assert not os.path.exists(made)


@pytest.mark.integration
def test_a_refused_configuration_leaves_no_directory_behind(tmp_path):
    import subprocess

    from tools.procs import ROOT, procfile_command

    env = {"PATH": os.environ["PATH"], **BASE_ENV, "APP_ID": "not-hex", "TMPDIR": str(tmp_path)}
    proc = subprocess.run(procfile_command(), cwd=ROOT, env=env, capture_output=True, timeout=30)
    assert proc.returncode == 3 and b"APP_ID" in proc.stderr
    assert list(tmp_path.iterdir()) == []
