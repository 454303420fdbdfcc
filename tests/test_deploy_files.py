"""The files in deploy/: the nginx site, the systemd unit and the settings example.

The integration tests deploy them as an operator would, on loopback: a settings file made from
deploy/env.example, the Procfile's gunicorn with the systemd unit's environment, and the
shipped nginx site in front of it (tests/nginx.py swaps only its ports and paths), over TLS.
"""
from __future__ import annotations

import http.client
import json
import re
import runpy
import select
import shlex
import shutil
import socket
import ssl
import subprocess
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from config import environment, names
from config import settings as config
from tests.conftest import BASE_ENV
from tests.credentials import sign_jwt
from tests.nginx import SITE, nginx_site, substitute
from tools.procs import ROOT, free_port, gunicorn, procfile_command

UNIT = ROOT / "deploy" / "systemd" / "agora-token-server.service"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
INSTALL_DIR = "/opt/agora-token-server"  # where the unit expects the project and its .venv
# Named in env.example before config/settings.py has them, or read outside it.
NOT_IN_SETTINGS = {"RATE_LIMIT_IPV6_PREFIX", "METRICS_ENABLED", "PROMETHEUS_MULTIPROC_DIR"}
SETTING_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", re.M)


# --- the systemd unit ----------------------------------------------------------------------

def unit_service(text: str | None = None) -> dict[str, list[str]]:
    """The unit's [Service] directives, each with all its values (Environment= repeats)."""
    directives: dict[str, list[str]] = {}
    section = None
    for raw in (UNIT.read_text() if text is None else text).splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith(("#", ";")) and section == "[Service]":
            key, _, value = line.partition("=")
            directives.setdefault(key, []).append(value)
    return directives


def unit_environment(service: dict[str, list[str]]) -> dict[str, str]:
    return dict(assignment.split("=", 1) for value in service["Environment"] for assignment in shlex.split(value))


def test_the_unit_runs_the_procfiles_command_from_the_virtualenv():
    service = unit_service()
    procfile = procfile_command()
    assert shlex.split(service["ExecStart"][0]) == [f"{INSTALL_DIR}/.venv/bin/{Path(procfile[0]).name}",
                                                    *procfile[1:]]
    assert service["WorkingDirectory"] == [INSTALL_DIR]
    assert service["User"][0] not in ("", "root")


def test_the_unit_reloads_with_hup_and_outwaits_a_graceful_stop():
    service = unit_service()
    gunicorn_conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]  # the master stops its workers itself
    assert int(service["TimeoutStopSec"][0]) > gunicorn_conf["graceful_timeout"] + gunicorn_conf["keepalive"]
    assert service["Restart"] == ["on-failure"]


def test_the_unit_lets_the_service_read_its_settings_file_itself(tmp_path):
    """An EnvironmentFile= would put the settings in the process environment at start, and the
    environment wins over the file the service reads again on HUP: a reload would change nothing."""
    service = unit_service()
    assert "EnvironmentFile" not in service
    assert unit_environment(service)["ENV_FILE"] == "/etc/agora-token-server/agora-token-server.env"
    settings_file = tmp_path / "settings.env"
    settings_file.write_text("DEFAULT_EXPIRE=2000\n")
    assert environment.environment({"ENV_FILE": str(settings_file), "DEFAULT_EXPIRE": "1000"})["DEFAULT_EXPIRE"] == "1000"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    unit = tmp_path / UNIT.name  # the project where the unit expects it: verify checks ExecStart exists
    unit.write_text(substitute(UNIT.read_text(), {INSTALL_DIR: str(ROOT)}, UNIT))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- deploy/env.example --------------------------------------------------------------------

def setting_names() -> set[str]:
    """Every setting config/names.py defines: its name constants and the RATELIMIT_* it reads."""
    defined = {value for name, value in vars(names).items() if name.isupper() and value == name}
    return defined | set(names.RATELIMIT_SETTINGS)


def example_lines() -> list[tuple[str, str]]:
    """(name, value) of each setting line in env.example, commented out or not."""
    return SETTING_LINE.findall(ENV_EXAMPLE.read_text())


def test_env_example_names_every_setting_once_and_nothing_else():
    named = Counter(name for name, _ in example_lines())
    assert {name for name, count in named.items() if count > 1} == set()
    assert setting_names() - set(named) == set()
    assert set(named) - setting_names() <= NOT_IN_SETTINGS


def test_env_example_parses_and_shows_the_real_defaults(tmp_path):
    uncommented = tmp_path / "uncommented.env"
    uncommented.write_text(re.sub(r"^#(?=[A-Z][A-Z0-9_]*=)", "", ENV_EXAMPLE.read_text(), flags=re.M))
    assert environment.read_env_file(uncommented) == dict(example_lines())  # each line a comment or KEY=value
    known = setting_names()
    for name, value in re.findall(r"^#([A-Z][A-Z0-9_]*)=(.+)$", ENV_EXAMPLE.read_text(), re.M):
        if name not in known:
            continue
        base = {k: v for k, v in BASE_ENV.items() if k != name}
        default, shown = config.settings_from_environment(base), config.settings_from_environment({**base, name: value})
        # flask-limiter's own defaults (fixed-window, ...) are not in Settings: compare those that are.
        shown = replace(shown, ratelimit={k: v for k, v in shown.ratelimit.items() if k in default.ratelimit})
        assert shown == default, f"env.example shows {name}={value}, which is not the default"


# --- the three together, with real processes -----------------------------------------------

def filled_env_example() -> str:
    """env.example with the test's required values: what an operator's settings file holds."""
    text = ENV_EXAMPLE.read_text()
    for name, value in BASE_ENV.items():
        if name != "ENV_FILE":
            text, found = re.subn(rf"^#?{name}=.*$", f"{name}={value}", text, flags=re.M)
            assert found == 1, name
    return text


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deploy")
    (tmp / "run").mkdir()  # what RuntimeDirectory= creates
    (tmp / "nginx").mkdir()
    settings_file = tmp / "agora-token-server.env"
    settings_file.write_text(filled_env_example())
    port = free_port()
    unit = substitute(UNIT.read_text(), {
        "/etc/agora-token-server/agora-token-server.env": str(settings_file),
        "127.0.0.1:8080": f"127.0.0.1:{port}",
        "/run/agora-token-server": str(tmp / "run"),
    }, UNIT)
    log_path = tmp / "gunicorn.log"
    with gunicorn(unit_environment(unit_service(unit)), port=port, log_path=log_path) as service, \
            nginx_site(service.port, tmp / "nginx") as site:
        yield SimpleNamespace(service=service, site=site, log_path=log_path)


def https(deployed, method: str, path: str, *, source: str = "127.0.0.1", **kw) -> http.client.HTTPResponse:
    """One request to the TLS server from ``source``, the certificate verified; the body read."""
    context = ssl.create_default_context(cafile=str(deployed.site.certificate))
    conn = http.client.HTTPSConnection("127.0.0.1", deployed.site.https_port, timeout=10, context=context,
                                       source_address=(source, 0))
    try:
        conn.request(method, path, **kw)
        response = conn.getresponse()
        response.data = response.read()
        return response
    finally:
        conn.close()


def access_lines(deployed, request_id: str) -> list[dict]:
    """The service's log lines for ``request_id``, waiting (as long as a busy machine may take)
    for them to be written."""
    deadline = time.monotonic() + 20
    while True:
        lines = [json.loads(line) for line in deployed.log_path.read_text().splitlines()
                 if request_id in line and line.startswith("{")]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def nginx_log(deployed, expected: str = "") -> str:
    """nginx's access log, once it holds ``expected`` (nginx writes a line after the response
    has gone out, so a client can read its response before the line is there; on a busy machine,
    a while before)."""
    deadline = time.monotonic() + 20
    while True:
        text = deployed.site.access_log.read_text()
        if expected in text or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


@pytest.mark.integration
def test_a_token_request_goes_through_nginx_over_tls(deployed):
    health = requests.get(deployed.site.https_url + "/healthz", verify=str(deployed.site.certificate), timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    r = requests.get(deployed.site.https_url + "/rtm/bob/", verify=str(deployed.site.certificate), timeout=10,
                     headers={"Authorization": "Bearer " + sign_jwt("ops-user", groups=["ops"])})
    assert r.status_code == 200 and r.json()["rtmToken"].startswith("007")


@pytest.mark.integration
def test_gunicorn_listens_on_loopback_only(deployed):
    """The unit's GUNICORN_CMD_ARGS win over gunicorn.conf.py's 0.0.0.0: 127.0.0.2 is refused."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", deployed.service.port), timeout=2).close()


@pytest.mark.integration
def test_a_forged_x_forwarded_for_is_not_the_client_address(deployed):
    r = https(deployed, "GET", "/ping", source="127.0.0.2",
              headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "forged-xff"})
    assert r.status == 200
    lines = access_lines(deployed, "forged-xff")
    assert [line["client"] for line in lines if "client" in line] == ["127.0.0.2"]
    assert "203.0.113.9" not in json.dumps(lines)


def test_nginx_keeps_the_request_ids_the_service_keeps():
    from api.observability import _REQUEST_ID

    kept = re.search(r'"~\^(.*)\$" \$http_x_request_id;', SITE.read_text())
    assert kept and kept.group(1) == _REQUEST_ID.pattern


@pytest.mark.integration
@pytest.mark.parametrize("given", [None, "client-id.42", "short", "not an id!", "x" * 65])
def test_the_request_id_is_the_clients_when_sane_else_nginxs(deployed, given):
    r = https(deployed, "GET", "/ping", headers={"X-Request-Id": given} if given else {})
    rid = r.getheader("X-Request-Id")
    if given == "client-id.42":
        assert rid == given
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", rid)  # nginx's $request_id
    assert f"id={rid}\n" in nginx_log(deployed, f"id={rid}\n")
    assert access_lines(deployed, rid)  # the service logged it under the same id


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/metrics?name[]=up", "//metrics", "/%6Detrics",
                                  "/./metrics", "/ping/../metrics"])
def test_metrics_are_not_served_to_the_outside(deployed, path):
    r = https(deployed, "GET", path)
    assert (r.status, json.loads(r.data)) == (404, {"error": "no such route", "code": "404"})
    assert r.getheader("X-Request-Id") is None  # nginx answered: the service marks each of its answers


@pytest.mark.integration
@pytest.mark.parametrize("size, status", [(4096, 200), (4097, 413)])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_nginx_refuses_a_body_over_max_body_bytes(deployed, size, status, chunked):
    body = b'{"expire": 60}'.ljust(size)
    r = https(deployed, "POST", "/generate-app-token", body=iter([body]) if chunked else body,
              encode_chunked=chunked,
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + sign_jwt(groups=["ops"])})
    assert r.status == status, r.data
    if status == 413:
        assert json.loads(r.data) == {"error": "the request body is too large", "code": "413"}
        assert r.getheader("X-Request-Id") is None  # refused before gunicorn saw it


@pytest.mark.integration
def test_plain_http_is_redirected_to_https(deployed):
    r = requests.post(f"http://127.0.0.1:{deployed.site.redirect_port}/rtm/bob/?expiry=60", allow_redirects=False,
                      timeout=10)
    assert (r.status_code, r.headers["Location"]) == (301, "https://127.0.0.1/rtm/bob/?expiry=60")


@pytest.mark.integration
def test_nginx_drops_a_client_that_never_finishes_its_request_head(deployed):
    """client_header_timeout (10 s) for the whole head, however it trickles in."""
    timeout = int(re.search(r"^\s*client_header_timeout (\d+)s;", SITE.read_text(), re.M).group(1))
    with socket.create_connection(("127.0.0.1", deployed.site.http_port), timeout=5) as s:
        connected = time.monotonic()  # nginx's timer starts at its accept, no earlier
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        while time.monotonic() - connected < timeout + 10:
            if select.select([s], [], [], 0.5)[0]:
                break  # an answer, or the connection closed
            s.sendall(b"a")
        answer = s.recv(65536)
        waited = time.monotonic() - connected
    assert not answer.startswith(b"HTTP/1.1 200")
    assert timeout - 0.5 < waited < timeout + 5  # the slack above: a busy machine, noticed late
