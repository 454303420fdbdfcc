"""Operating the running service: HUP reloads the policy and settings without dropping a request,
TERM lets the requests in flight finish (within gunicorn.conf.py's ``graceful_timeout``).

Every worker builds the app (settings and policy) when it boots, and the app is not preloaded, so
on HUP gunicorn's master re-reads gunicorn.conf.py, boots new workers on the new files and stops
the old ones gracefully, while the listening socket stays open.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

import tokens
from tests.conftest import BASE_ENV
from tests.credentials import APP_CERTIFICATE, sign_jwt
from tools.procs import accept_queue, gunicorn

pytestmark = pytest.mark.integration

POLICY = """\
grants:
  - when: {{groups: [staff]}}
    rtc: {{channels: [{channels}], roles: [publisher, subscriber], uids: [any], max_expire: 86400}}
"""
LOBBY, VIP = "/rtc/lobby/publisher/uid/7/", "/rtc/vip/publisher/uid/7/"
SECONDS_EACH_SIDE = 2.0  # of steady load before HUP and after the old workers are gone
GRACEFUL_TIMEOUT = 20  # gunicorn.conf.py's: a stop that takes half of it has waited on something
SLOW_SECOND_WORKER = Path(__file__).parent / "data" / "slow_second_worker.conf.py"


def write_atomically(path: Path, text: str) -> None:
    """A worker booting at that moment reads the old file or the new one, never half of one."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def wait_until(condition, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(step)
    raise TimeoutError(f"{what} after {timeout}s")


def hup(service) -> None:
    """HUP, with no idle keep-alive connection of the test's own to hold an old worker up to
    ``keepalive`` (5 s) past it; the session opens a new one when next used."""
    service.http.close()
    os.kill(service.pid, signal.SIGHUP)


class SteadyLoad:
    """Threads asking for LOBBY and VIP in turn until stopped; every answer or failure is kept."""

    def __init__(self, url: str, headers: dict, threads: int = 4):
        self.url, self.headers = url, headers
        self.results: list[tuple[float, float, str, int | str, dict | None]] = []  # start, end, path, status, body
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            for path in (LOBBY, VIP):
                started = time.monotonic()
                try:
                    r = session.get(self.url + path, headers=self.headers, timeout=10)
                    status, body = r.status_code, r.json()
                except (requests.RequestException, ValueError) as e:
                    status, body = type(e).__name__, None
                self.results.append((started, time.monotonic(), path, status, body))

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def run_for(self, seconds: float, at_least: int = 40) -> None:
        """Let the load run ``seconds`` and ``at_least`` more requests (bounded)."""
        start, count = time.monotonic(), len(self.results)
        wait_until(lambda: time.monotonic() - start >= seconds and len(self.results) >= count + at_least,
                   seconds + 20, "the load stalled")


def test_hup_reloads_policy_and_settings_under_load_without_a_failed_request(tmp_path):
    policy, env_file = tmp_path / "policy.yaml", tmp_path / "service.env"
    write_atomically(policy, POLICY.format(channels="lobby"))
    write_atomically(env_file, "DEFAULT_EXPIRE=1000\n")
    env = {**BASE_ENV, "POLICY_FILE": str(policy), "ENV_FILE": str(env_file),  # limits far above the load
           "RATE_LIMIT_PER_USER": "1000000/minute", "RATE_LIMIT_PER_IP": "1000000/minute"}
    auth = {"Authorization": "Bearer " + sign_jwt("sam", groups=["staff"], lifetime=3600)}

    with gunicorn(env, workers=2, log_path=tmp_path / "service.log") as service, \
            SteadyLoad(service.url, auth) as load:
        old_workers = set(service.worker_pids())
        load.run_for(SECONDS_EACH_SIDE)

        write_atomically(policy, POLICY.format(channels="lobby, vip"))
        write_atomically(env_file, "DEFAULT_EXPIRE=2000\n")
        at_hup = time.monotonic()
        hup(service)

        def reloaded():
            workers = set(service.worker_pids())
            return len(workers) == 2 and not workers & old_workers
        wait_until(reloaded, 30, "the old workers were never replaced")
        at_reloaded = time.monotonic()
        load.run_for(SECONDS_EACH_SIDE)

        assert service.proc.poll() is None  # the same master, still serving
        new_workers = set(service.worker_pids())

    results = list(load.results)
    failures = [r for r in results if r[3] not in (200, 403) or (r[2] == LOBBY and r[3] != 200)]
    assert not failures, failures[:10]
    # Answered before the HUP was sent: the old workers. Sent after they were gone: the new ones.
    before = [r for r in results if r[1] < at_hup]
    across = [r for r in results if r[0] < at_reloaded and r[1] > at_hup]
    after = [r for r in results if r[0] >= at_reloaded]
    assert across, "no request was in flight while the workers were being replaced"
    assert {(path, status) for _, _, path, status, _ in before} == {(LOBBY, 200), (VIP, 403)}
    assert {body["expire"] for _, _, path, _, body in before if path == LOBBY} == {1000}
    assert all(body == {"error": "channel 'vip' is not granted to this caller", "code": "403"}
               for _, _, path, _, body in before if path == VIP)
    assert {(path, status) for _, _, path, status, _ in after} == {(LOBBY, 200), (VIP, 200)}
    assert {body["expire"] for _, _, _, _, body in after} == {2000}
    for _, _, _, _, body in after[-4:]:
        assert tokens.parse_token(body["rtcToken"]).verify(APP_CERTIFICATE)
    assert len(new_workers) == 2 and not new_workers & old_workers


def test_hup_with_a_broken_policy_keeps_the_running_configuration(tmp_path):
    policy = tmp_path / "policy.yaml"
    write_atomically(policy, POLICY.format(channels="lobby"))
    log = tmp_path / "service.log"
    env = {**BASE_ENV, "POLICY_FILE": str(policy)}
    auth = {"Authorization": "Bearer " + sign_jwt("sam", groups=["staff"], lifetime=3600)}

    with gunicorn(env, workers=2, log_path=log) as service:
        old_workers = set(service.worker_pids())
        write_atomically(policy, POLICY.format(channels="lobby, vip") + "  - when: nobody\n")
        hup(service)

        def replaced():
            workers = set(service.worker_pids())
            return len(workers) == 2 and not workers & old_workers and workers
        refused_workers = wait_until(replaced, 30, "the workers were never replaced")
        assert "reload refused" in log.read_text()
        assert service.proc.poll() is None
        assert service.get(LOBBY, headers=auth).status_code == 200
        assert service.get(VIP, headers=auth).status_code == 403  # still the old policy

        write_atomically(policy, POLICY.format(channels="lobby, vip"))  # fixed: the next HUP takes it
        hup(service)
        wait_until(lambda: not set(service.worker_pids()) & refused_workers and len(service.worker_pids()) == 2,
                   30, "the workers were never replaced")
        assert wait_until(lambda: service.get(VIP, headers=auth).status_code == 200, 10, "vip never granted")


@pytest.mark.parametrize("broken", ["DEFAULT_EXPIRE=soon\n", 'JWT_PUBLIC_KEY="-----BEGIN\n', "no equals sign\n"],
                         ids=["bad-value", "unclosed-quote", "unreadable-line"])
def test_hup_with_a_broken_env_file_keeps_the_service_running(tmp_path, broken):
    env_file = tmp_path / "service.env"
    env_file.write_text("LOG_LEVEL=INFO\n")
    log = tmp_path / "service.log"
    with gunicorn({**BASE_ENV, "ENV_FILE": str(env_file)}, workers=1, log_path=log) as service:
        old_workers = set(service.worker_pids())
        env_file.write_text("LOG_LEVEL=INFO\n" + broken)
        hup(service)
        wait_until(lambda: "reload refused" in log.read_text(), 30, "the reload was never refused")
        wait_until(lambda: len(service.worker_pids()) == 1 and not set(service.worker_pids()) & old_workers,
                   30, "the workers were never replaced")
        assert service.proc.poll() is None
        assert service.get("/ping").status_code == 200
        assert "Failed to read config file" not in log.read_text()


def _start_slow_request(port: int, body: bytes, auth: dict) -> http.client.HTTPConnection:
    """A POST whose headers and first half of body are sent; the rest comes later."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/getToken", skip_accept_encoding=True)
    for name, value in {**auth, "Content-Type": "application/json",
                        "Content-Length": str(len(body))}.items():
        conn.putheader(name, value)
    conn.endheaders(body[: len(body) // 2])
    return conn


def _sigterm_with_requests_in_flight(service, n: int, log: Path, auth: dict):
    """``n`` requests being read by the workers when TERM arrives, each waiting for its body."""
    body = b'{"tokenType": "rtc", "channel": "c", "role": "publisher", "uid": "7", "expire": 600}'
    conns = [_start_slow_request(service.port, body, auth) for _ in range(n)]
    wait_until(lambda: accept_queue(service.port) == 0, 10, "the workers never accepted the requests")
    service.http.close()  # its idle keep-alive connection would hold a worker for `keepalive` (5 s)
    workers = service.worker_pids()
    terminated = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "Handling signal: term" in log.read_text(), 10, "the master never saw TERM")
    time.sleep(0.5)  # the workers have had TERM for a while now, and are still reading the bodies
    # A worker with nothing in flight is gone already; one that holds a request is not.
    assert service.proc.poll() is None and set(service.worker_pids()) & set(workers)
    return conns, body, terminated


def test_sigterm_finishes_the_requests_in_flight_then_exits(tmp_path):
    log = tmp_path / "service.log"
    auth = {"Authorization": "Bearer " + sign_jwt("ops-user", groups=["ops"])}
    with gunicorn(BASE_ENV, workers=2, log_path=log) as service:
        conns, body, _ = _sigterm_with_requests_in_flight(service, 2, log, auth)
        for conn in conns:
            conn.send(body[len(body) // 2:])
        answers = [conn.getresponse() for conn in conns]
        for conn, answer in zip(conns, answers, strict=True):
            assert answer.status == 200
            assert tokens.parse_token(json.loads(answer.read())["token"]).verify(APP_CERTIFICATE)
            conn.close()  # these requests began before TERM, so their connections were kept alive
        assert service.proc.wait(GRACEFUL_TIMEOUT / 2) == 0


def test_sigterm_while_a_worker_is_still_booting_stops_it_at_once(tmp_path):
    """The first worker is serving a request and the second is still booting when TERM arrives
    (held in its boot by the test's config, before gunicorn installs the worker's own handlers).
    The request is finished, and the booting worker exits at once: the master does not wait out
    the graceful timeout for it."""
    log = tmp_path / "service.log"
    auth = {"Authorization": "Bearer " + sign_jwt("ops-user", groups=["ops"])}
    with gunicorn(BASE_ENV, workers=2, log_path=log, config=SLOW_SECOND_WORKER) as service:
        wait_until(lambda: "booting slowly" in log.read_text(), 30, "the second worker never booted")
        (conn,), body, _ = _sigterm_with_requests_in_flight(service, 1, log, auth)
        conn.send(body[len(body) // 2:])
        answer = conn.getresponse()
        assert answer.status == 200
        assert tokens.parse_token(json.loads(answer.read())["token"]).verify(APP_CERTIFICATE)
        conn.close()
        assert service.proc.wait(GRACEFUL_TIMEOUT / 2) == 0
    assert "SIGTERM while booting" in log.read_text()


def test_sigterm_gives_up_on_a_request_after_the_graceful_timeout(tmp_path):
    log = tmp_path / "service.log"
    auth = {"Authorization": "Bearer " + sign_jwt("ops-user", groups=["ops"])}
    # gunicorn.conf.py says 20 s; the command line (GUNICORN_CMD_ARGS) overrides it to keep this
    # short, yet long enough that the worker is surely still waiting for the body when the test
    # looks, however busy the machine.
    grace = 4
    env = {**BASE_ENV, "GUNICORN_CMD_ARGS": f"--graceful-timeout {grace}"}
    with gunicorn(env, workers=1, log_path=log) as service:
        (conn,), _, terminated = _sigterm_with_requests_in_flight(service, 1, log, auth)  # no more body
        assert service.proc.wait(grace + 15) == 0
        assert grace - 0.5 < time.monotonic() - terminated < grace + 10
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            conn.getresponse()
        conn.close()
