"""Helpers for tests that need JWTs: keys, signed tokens, forged tokens and a live JWKS server.

    from tests.jwtutil import TEST_SECRET, JWKSServer, make_jwt, public_jwk, rsa_key

Keys are generated once per process (``rsa_key(0)`` is always the same key). ``make_jwt`` signs
with pyjwt; ``sign_raw`` signs exactly the header and payload given, so tests can forge what
pyjwt refuses to encode (``alg: none``, claims of the wrong type, an RSA PEM as HMAC secret).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import threading
import time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Mapping

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from config.settings import Settings

TEST_SECRET = "test-secret-for-hs512-needs-64-bytes-0123456789abcdefghijklmnopq"
assert len(TEST_SECRET) == 64
_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def make_settings(**jwt_fields: Any) -> Settings:
    """Settings with dummy Agora credentials and the given ``jwt_*`` fields."""
    return Settings(app_id="0" * 32, app_certificate="1" * 32, **jwt_fields)


@lru_cache(maxsize=None)
def rsa_key(n: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@lru_cache(maxsize=None)
def ec_key(n: int = 0, curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve]())


@lru_cache(maxsize=None)
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
    now = datetime.datetime.now(datetime.timezone.utc)
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


def make_jwt(
    claims: Mapping[str, Any] | None = None,
    *,
    key: Any = TEST_SECRET,
    algorithm: str = "HS256",
    headers: Mapping[str, Any] | None = None,
    lifetime: int = 300,
    omit: Iterable[str] = (),
) -> str:
    """A JWT signed by pyjwt: ``sub``/``iat``/``exp`` defaults, overridden by ``claims``.

    ``omit`` drops claims (``omit=("exp",)``); ``key`` is the secret or a private key object.
    """
    now = int(time.time())
    payload: dict[str, Any] = {"sub": "user-1", "iat": now, "exp": now + lifetime}
    payload.update(claims or {})
    for name in omit:
        payload.pop(name, None)
    return jwt.encode(payload, key, algorithm=algorithm, headers=dict(headers or {}))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes,
             key: Any = TEST_SECRET, algorithm: str | None = None) -> str:
    """Sign exactly this header and payload (dicts are JSON-encoded, bytes are used as is).

    The signing algorithm is ``algorithm``, else the header's ``alg``, else HS256. ``HS*`` uses
    HMAC over ``key`` whatever it is (a PEM too: algorithm confusion); ``none`` (or a non-string
    ``alg``) gives an empty signature; anything else signs with the private ``key`` object.
    """
    raw_header = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw_payload = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(raw_header)}.{b64url(raw_payload)}".encode()
    alg = algorithm or (header.get("alg", "HS256") if isinstance(header, Mapping) else "HS256")
    if alg in _HASHES:
        secret = key if isinstance(key, bytes) else str(key).encode()
        signature = hmac.new(secret, signing_input, _HASHES[alg]).digest()
    elif not isinstance(alg, str) or alg.lower() == "none":
        signature = b""
    else:
        signature = jwt.get_algorithm_by_name(alg).sign(signing_input, key)
    return f"{signing_input.decode()}.{b64url(signature)}"


def default_claims(lifetime: int = 300, **claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "iat": now, "exp": now + lifetime, **claims}


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
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
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
