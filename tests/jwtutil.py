"""Keys for tests of JWT verification, their PEM and JWK forms, a live JWKS server, and the
values a JWT's claims may hold (hypothesis strategies).

    from tests.jwtutil import CLAIM_VALUES, JWKSServer, json_text, public_jwk, rsa_key

Keys are generated once per process (``rsa_key(0)`` is always the same key). Signing a JWT,
with these keys or the test secret, is tests/credentials.py's.
"""
from __future__ import annotations

import datetime
import json
import re
import threading
import time
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from config.settings import Settings
from tests.credentials import APP_CERTIFICATE, APP_ID

_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}


def make_settings(**jwt_fields: Any) -> Settings:
    """Settings with the test credentials and the given ``jwt_*`` fields."""
    return Settings(app_id=APP_ID, app_certificate=APP_CERTIFICATE, **jwt_fields)


@cache
def rsa_key(n: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key(n: int = 0, curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve]())


@cache
def ed25519_key(n: int = 0) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(private_key: Any) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(private_key: Any) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def certificate_pem(private_key: Any) -> str:
    """A self-signed certificate for the key, as an IdP might publish it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-idp")])
    now = datetime.datetime.now(datetime.UTC)
    algorithm = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private_key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def public_jwk(private_key: Any, kid: str | None = None, **members: Any) -> dict[str, Any]:
    """The public JWK of a key, with ``kid`` and any other members (``alg``, ``use``...)."""
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    jwk.update(members)
    return jwk


class JWKSServer:
    """A JWKS endpoint on 127.0.0.1 (a free port) for tests; a context manager.

    Set what it serves with ``serve(*jwks)`` or ``serve_raw(body, status)``; ``hang = True``
    makes it accept requests and never answer (until stopped); ``delay`` slows every answer.
    ``hits`` counts the requests it received; ``stop()`` closes the port (connection refused).
    """

    def __init__(self, *jwks: dict[str, Any], delay: float = 0.0):
        self.delay = delay
        self.hits = 0
        self._lock = threading.Lock()
        self._answering = threading.Event()
        self._answering.set()
        self.serve(*jwks)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread: threading.Thread | None = None

    @property
    def hang(self) -> bool:
        return not self._answering.is_set()

    @hang.setter
    def hang(self, value: bool) -> None:
        # Turning it off releases the requests left hanging; they end without an answer.
        if value:
            self._answering.clear()
        else:
            self._answering.set()

    def serve(self, *jwks: dict[str, Any]) -> None:
        self.serve_raw(json.dumps({"keys": list(jwks)}).encode())

    def serve_raw(self, body: bytes, status: int = 200,
                  content_type: str = "application/json") -> None:
        with self._lock:
            self._response = (status, content_type, body)

    def start(self) -> JWKSServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.hang = False
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> JWKSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.hits += 1
                    status, content_type, body = server._response
                if server.hang:
                    server._answering.wait(30)
                    self.close_connection = True
                    return
                if server.delay:
                    time.sleep(server.delay)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# --- claim values ---------------------------------------------------------------------------

class JSONNumber:
    """A JSON number written exactly as given, where json.dumps cannot: ``1e400`` (inf once
    parsed), ``-0`` (the integer 0)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"JSONNumber({self.text!r})"


HUGE = "9" * 309  # 309 digits: past the largest float, so float(int(HUGE)) raises OverflowError


def json_text(value: Any) -> bytes:
    """``value`` as JSON text, each ``JSONNumber`` written as its own text."""
    marked = json.dumps(value, default=lambda number: f"\0JSONNumber:{number.text}\0")
    return re.sub(r'"\\u0000JSONNumber:([^"]*)\\u0000"', r"\1", marked).encode()


# Numbers a client may write into any claim: integers past float's range either way, negative
# ones, and spellings json.dumps never writes. The verifier answers them with an identity or a
# 401 and the policy decides with them; neither may overflow.
ABSURD_NUMBERS = (st.integers(min_value=10**308, max_value=10**400) | st.integers(-10**400, -1)
                  | st.sampled_from([JSONNumber(text) for text in
                                     ("1e400", "-1e400", "-0", "-0.0", HUGE, "-" + HUGE, "1" + "0" * 4000)]))
CLAIM_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ABSURD_NUMBERS | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
