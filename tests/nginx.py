"""A real nginx reverse proxy on loopback, configured as the README's "Rate limits" section says,
and an HTTP client that picks its own source address (127.0.0.2, 127.0.0.3, ...)."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from tests.procs import ensure_installed, free_port, stop, wait_for_port

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@contextmanager
def nginx(upstream_port: int, root: Path) -> Iterator[int]:
    """nginx in front of ``127.0.0.1:upstream_port``; yields the port it listens on."""
    binary = ensure_installed("nginx", "nginx")
    port = free_port()
    conf = root / "nginx.conf"
    # As root, nginx's workers would drop to "nobody"; keep them root so they can use root's paths.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(CONFIG.format(user=user, root=root, port=port, upstream=upstream_port))
    proc = subprocess.Popen([binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        try:
            wait_for_port(port, proc=proc)
        except (RuntimeError, TimeoutError) as e:
            log = root / "error.log"
            raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else e}") from e
        yield port
    finally:
        stop(proc)


def get_from(source: str, port: int, path: str, headers: Mapping[str, str] | None = None):
    """GET ``path`` on 127.0.0.1:``port`` from the address ``source``: (status, headers, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        conn.close()
