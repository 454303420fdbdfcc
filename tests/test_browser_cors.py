"""A real browser: headless Chromium runs a page from one loopback origin that asks the service,
on another origin, for tokens with an ``Authorization`` header (so every call is preflighted).

The service allows only the first page's origin. That page must get a token, and read the
status and JSON body of a 401, a 403 and a 429; the same page served from an origin the service
does not allow must be refused by the browser itself. Each page posts what it saw back to the
little server that served it, so no browser driver is needed.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import tokens
from tests.conftest import BASE_ENV
from tests.credentials import APP_CERTIFICATE, sign_jwt
from tools.procs import ensure_installed, gunicorn

pytestmark = pytest.mark.integration

PAGE = Path(__file__).parent / "browser" / "token_page.html"
ALLOWED_HOST, DISALLOWED_HOST = "127.0.0.1", "127.0.0.2"
# Debian's chromium as root on a machine without network: no sandbox, nothing phoning home; the
# page's console (where Chromium says why it blocked a fetch) goes to the log.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr"]
RESULT_TIMEOUT = 30  # seconds a page may take to report


class PageServer(ThreadingHTTPServer):
    """Serves ``html`` at ``/`` and takes what the page posts to ``/result``."""

    def __init__(self, host: str):
        super().__init__((host, 0), _PageHandler)
        self.html = b""
        self.results: queue.Queue = queue.Queue()
        self.origin = f"http://{host}:{self.server_address[1]}"


class _PageHandler(BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self):
        if self.path != "/":
            self.send_error(404)
            return
        self._answer(200, "text/html; charset=utf-8", self.server.html)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.results.put(json.loads(body))
        self._answer(204, "text/plain", b"")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: pytest shows the assertion, not an access log
        pass


@contextmanager
def page_server(host: str) -> Iterator[PageServer]:
    server = PageServer(host)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def chromium(binary: str, url: str, log: Path) -> Iterator[subprocess.Popen]:
    """Headless Chromium on ``url``, with a fresh profile; it and its helpers stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, open(log, "wb") as out:
        proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                                stdout=out, stderr=out, start_new_session=True)
        try:
            yield proc
        finally:
            stop_group(proc)


def stop_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """TERM to Chromium's process group, then KILL to whatever of it is left (renderers, zygote)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout)


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    return ensure_installed("chromium", "chromium")


@pytest.fixture(scope="module")
def pages(chromium_binary, tmp_path_factory) -> dict[str, dict]:
    """What the page saw from the allowed origin and from the disallowed one (one run each), and
    under ``"console"`` the page's console messages as Chromium logged them."""
    workdir = tmp_path_factory.mktemp("browser")
    with ExitStack() as stack:
        servers = {"allowed": stack.enter_context(page_server(ALLOWED_HOST)),
                   "disallowed": stack.enter_context(page_server(DISALLOWED_HOST))}
        # One worker, so that memory:// counts all of a user's calls in one place: the third is a 429.
        env = {**BASE_ENV, "CORS_ALLOW_ORIGIN": servers["allowed"].origin, "RATE_LIMIT_PER_USER": "2/minute"}
        service = stack.enter_context(gunicorn(env, workers=1, log_path=workdir / "service.log"))
        config = {"service": service.url, "calls": [
            ["token", "/rtc/live-1/publisher/uid/1234/", sign_jwt("alice", groups=["ops"])],
            ["noJwt", "/rtc/live-1/publisher/uid/1234/", None],
            ["denied", "/rtc/vip/publisher/uid/1234/", sign_jwt("bob")],
            *[[f"limited{i}", "/rtm/carol/", sign_jwt("carol", groups=["ops"])] for i in (1, 2, 3)],
            ["ping", "/ping", None],  # a simple request: no preflight, still unreadable cross-origin
        ]}
        html = PAGE.read_text().replace("/*CONFIG*/null", json.dumps(config).replace("</", "<\\/"))
        seen = {}
        with ExitStack() as browsers:
            for name, server in servers.items():
                server.html = html.encode()
                browsers.enter_context(chromium(chromium_binary, server.origin + "/", workdir / f"{name}.log"))
            for name, server in servers.items():
                try:
                    seen[name] = server.results.get(timeout=RESULT_TIMEOUT)
                except queue.Empty:
                    log = (workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"the {name} page reported nothing in {RESULT_TIMEOUT}s; chromium said:\n{log}")
        for name in servers:  # Chromium has stopped: its log is whole
            log = (workdir / f"{name}.log").read_text(errors="replace")
            seen[name]["console"] = [line for line in log.splitlines() if ":CONSOLE" in line]
        return seen


def calls(seen: dict) -> list[str]:
    return [name for name in seen if name not in ("origin", "console")]


def test_the_allowed_origin_gets_a_token(pages):
    seen = pages["allowed"]
    assert seen["token"]["status"] == 200, seen
    assert tokens.parse_token(seen["token"]["body"]["rtcToken"]).verify(APP_CERTIFICATE)
    assert seen["token"]["requestId"]  # an exposed header: readable by the page
    assert (seen["ping"]["status"], seen["ping"]["body"]) == (200, {"message": "pong"})


@pytest.mark.parametrize("call, status, message", [
    ("noJwt", 401, "Authorization header is missing"),
    ("denied", 403, "channel 'vip' is not granted to this caller"),
    ("limited3", 429, "too many requests"),
])
def test_errors_are_readable_by_the_allowed_origin(pages, call, status, message):
    seen = pages["allowed"][call]
    assert seen["status"] == status, pages["allowed"]
    assert seen["body"] == {"error": message, "code": str(status)}
    if status == 429:
        assert int(seen["retryAfter"]) > 0


def test_the_rate_limit_let_the_first_calls_through(pages):
    seen = pages["allowed"]
    assert [seen[f"limited{i}"]["status"] for i in (1, 2, 3)] == [200, 200, 429]


def test_a_disallowed_origin_is_refused_by_the_browser(pages):
    seen = pages["disallowed"]
    assert seen["origin"].startswith(f"http://{DISALLOWED_HOST}:")
    assert calls(seen) and all(seen[name] == {"error": "TypeError", "message": "Failed to fetch"}
                               for name in calls(seen)), seen
    # Refused for CORS, in the browser's own words: the service answered without Allow-Origin.
    blocked = [line for line in seen["console"] if "has been blocked by CORS policy" in line]
    assert len(blocked) == len(calls(seen)), seen["console"]
    assert all(f"from origin '{seen['origin']}'" in line for line in blocked)


def test_the_allowed_origin_saw_no_cors_complaint(pages):
    assert not [line for line in pages["allowed"]["console"] if "CORS" in line]
