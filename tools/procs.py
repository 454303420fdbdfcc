"""Real processes for the integration tests and the benchmarks: free loopback ports, start,
wait until ready, stop.

Servers the project does not ship (redis-server, nginx, chromium) are installed from
Debian's packages when missing, as an operator would.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def accept_queue(port: int) -> int:
    """Connections waiting in the accept queue of the socket listening on ``port`` (IPv4, as
    ``ss -lt``'s Recv-Q): 0 once the server has accepted every connection made to it."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            return int(fields[4].split(":")[1], 16)
    raise LookupError(f"nothing listens on port {port}")


_apt_updated = False


def ensure_installed(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first if it is missing."""
    global _apt_updated
    for candidate in (shutil.which(command), f"/usr/sbin/{command}", f"/usr/bin/{command}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    found = shutil.which(command) or f"/usr/sbin/{command}"
    if not os.access(found, os.X_OK):
        raise RuntimeError(f"installed {package} but {command} is still missing")
    return found


def child_pids(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is ``pid``: a gunicorn master's workers."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]  # the command name may hold spaces
        if int(ppid) == pid and state != "Z":
            children.append(int(entry.name))
    return sorted(children)


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ProcessLookupError(pid)


def procfile_command(name: str = "web") -> list[str]:
    """The Procfile's command for ``name``, run from the project's virtualenv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            argv = shlex.split(command)
            argv[0] = str(VENV_BIN / argv[0])
            return argv
    raise KeyError(name)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def gunicorn(env: Mapping[str, str], *, workers: int = 2, port: int | None = None,
             log_path: Path | None = None, config: Path | None = None) -> Iterator[Service]:
    """The service from the Procfile, with ``env`` as its whole configuration; ``config`` is a
    gunicorn config file to run instead of the Procfile's ``gunicorn.conf.py``."""
    argv = procfile_command()
    if config is not None:
        argv[argv.index("-c") + 1] = str(config)
    own_log = log_path is None  # kept anyway, to tell a port taken meanwhile from a real failure
    if own_log:
        fd, name = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    tries = 1 if port else 3  # a free port may be taken by another process before gunicorn binds it
    proc, service = None, None
    try:
        for attempt in range(tries):
            bound = port or free_port()
            full_env = {"PATH": os.environ.get("PATH", ""), "PORT": str(bound), "WEB_CONCURRENCY": str(workers),
                        "PYTHONUNBUFFERED": "1", **env}
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log, stderr=log, start_new_session=True)
            try:
                wait_for_port(bound, proc=proc)
                break
            except RuntimeError as e:  # it exited: say why, from its own words
                said = Path(log_path).read_text(errors="replace")[-2000:]
                if "Address already in use" in said and attempt + 1 < tries:
                    continue
                raise RuntimeError(f"{e}; gunicorn said:\n{said}") from None
        service = Service(proc, bound)
        service.wait_ready()
        yield service
    finally:
        if service is not None:  # an idle keep-alive connection holds a stopping worker up to 5 s
            service.http.close()
        if proc is not None:
            stop(proc)
        if own_log:
            Path(log_path).unlink(missing_ok=True)


class Service:
    def __init__(self, proc: subprocess.Popen, port: int, host: str = "127.0.0.1"):
        self.proc = proc
        self.port = port
        self.url = f"http://{host}:{port}"
        self.http = requests.Session()

    @property
    def pid(self) -> int:
        """The gunicorn master's pid: the process to send HUP or TERM to."""
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return child_pids(self.proc.pid)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.http.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError("service never became healthy")

    def get(self, path: str, **kw):
        return self.http.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path: str, **kw):
        return self.http.post(self.url + path, timeout=kw.pop("timeout", 10), **kw)


class RedisServer:
    """A throwaway redis-server on a loopback port: no persistence, restartable on the same port."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.binary = ensure_installed("redis-server", "redis-server")
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_for_port(self.port, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill looks like to clients."""
        if self.proc is not None:
            stop(self.proc, signal.SIGKILL)


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.kill()
