"""A real nginx on loopback running the shipped site, deploy/nginx/agora-token-server.conf, and
an HTTP client that picks its own source address (127.0.0.2, 127.0.0.3, ...).

The site is loaded as an operator installs it, inside an ``http {}`` block of a small main
configuration of our own (pid, temp paths, events), with only its ports and paths replaced:
each replacement must find its text, so a change to the shipped file that the tests would no
longer cover fails loudly instead.

The tests also need plain HTTP (raw sockets, ``http.client``): the test copy gives the TLS
server a second, plain listener. That keeps every directive between the braces the shipped
ones, where turning the port-80 redirect into a proxy would test a server nobody runs.
"""
from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.procs import ROOT, ensure_installed, free_port, stop, wait_for_port

SITE = ROOT / "deploy" / "nginx" / "agora-token-server.conf"

MAIN = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {site};
}}
"""


@dataclass(frozen=True)
class Site:
    """The running site: its three loopback ports and the files a test reads."""

    root: Path
    https_port: int  # the shipped TLS server
    http_port: int  # the same server, plain: the listener the test copy adds
    redirect_port: int  # the shipped port-80 server
    certificate: Path  # self-signed, for 127.0.0.1: what a client verifies against

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def access_log(self) -> Path:
        return self.root / "agora-token-server.access.log"


def substitute(text: str, replacements: Mapping[str, str], source: Path) -> str:
    """``text`` with every occurrence of each key replaced; each key must occur."""
    for old, new in replacements.items():
        assert old in text, f"{source} no longer contains {old!r}: the test that loads it needs updating"
        text = text.replace(old, new)
    return text


def site_for_test(upstream_port: int, root: Path, *, https_port: int, http_port: int, redirect_port: int,
                  certificate: Path, key: Path) -> str:
    """The shipped site's text with its ports and paths pointed at this test's."""
    text = SITE.read_text()
    replacements = {
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{redirect_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;\n    listen 127.0.0.1:{http_port};  # test only",
        "/etc/ssl/certs/agora-token-server.crt": str(certificate),
        "/etc/ssl/private/agora-token-server.key": str(key),
        "/var/log/nginx/": f"{root}/",
    }
    text = substitute(text, replacements, SITE)
    directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    stray = re.findall(r"^\s*listen\s+(?!127\.0\.0\.1:)\S+.*$", directives, re.M)
    stray += re.findall(r"\s(/(?:etc|var|run)/\S+)", directives)
    assert not stray, f"{SITE} has listeners or paths tests/nginx.py does not replace: {stray}"
    return text


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agora-token-server test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "test.crt", directory / "test.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def nginx_site(upstream_port: int, root: Path) -> Iterator[Site]:
    """The shipped site in front of ``127.0.0.1:upstream_port``, checked by ``nginx -t`` first."""
    binary = ensure_installed("nginx", "nginx")
    certificate, key = self_signed_certificate(root)
    https_port, http_port, redirect_port = free_port(), free_port(), free_port()
    site = root / "agora-token-server.conf"
    site.write_text(site_for_test(upstream_port, root, https_port=https_port, http_port=http_port,
                                  redirect_port=redirect_port, certificate=certificate, key=key))
    conf = root / "nginx.conf"
    # As root, nginx's workers would drop to "nobody"; keep them root so they can use root's paths.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(MAIN.format(user=user, root=root, site=site))
    argv = [binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf)]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused {SITE}:\n{check.stderr}")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        try:
            for port in (https_port, http_port, redirect_port):
                wait_for_port(port, proc=proc)
        except (RuntimeError, TimeoutError) as e:
            log = root / "error.log"
            raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else e}") from e
        yield Site(root, https_port, http_port, redirect_port, certificate)
    finally:
        stop(proc)


@contextmanager
def nginx(upstream_port: int, root: Path) -> Iterator[int]:
    """The shipped site in front of ``127.0.0.1:upstream_port``; yields its plain-HTTP port."""
    with nginx_site(upstream_port, root) as site:
        yield site.http_port


def get_from(source: str, port: int, path: str, headers: Mapping[str, str] | None = None):
    """GET ``path`` on 127.0.0.1:``port`` from the address ``source``: (status, headers, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        conn.close()
