"""The keys a JWT is checked against: ``SigningKey``, the algorithms each key type fits, and the
key from ``JWT_SECRET`` or ``JWT_PUBLIC_KEY`` (``jwks`` builds the keys of ``JWT_JWKS_URL`` on
these).

Each function checks its setting once, at start-up, and raises ``ConfigError`` naming it: a
secret too short for its HMAC, a private key where a public one belongs, an algorithm that
does not fit the key's type, an RSA key under 2048 bits. The algorithms a key accepts are tied
to it here, so a token can never pick its own (no alg confusion).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import HMACAlgorithm

from config.names import JWT_ALGORITHMS, JWT_PUBLIC_KEY, JWT_SECRET, ConfigError

# What each accepted algorithm needs: its JWK key type (the "family" of JWT_ALGORITHMS).
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
CURVE_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
EDDSA_CURVES = ("Ed25519",)
KEY_TYPES: dict[str, str] = {
    **dict.fromkeys(HMAC_ALGORITHMS, "oct"),
    **dict.fromkeys(RSA_ALGORITHMS, "RSA"),
    **dict.fromkeys(CURVE_ALGORITHMS.values(), "EC"),
    "EdDSA": "OKP",
}
MIN_RSA_BITS = 2048


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A verification key and the algorithms (a subset of ``JWT_ALGORITHMS``) it may verify."""

    key: Any = field(repr=False)  # a cryptography public key, or the HMAC secret (never shown)
    algorithms: tuple[str, ...]
    kid: str | None = None


MIN_SECRET_BYTES = 32
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 §3.2: key >= hash size
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_BARE_KEY = re.compile(r"M[A-Za-z0-9+/]{40,}={0,2}")  # base64 DER: a SEQUENCE starts "M"
_CANONICAL = {alg.upper(): alg for alg in KEY_TYPES}  # settings upper-cases: EDDSA -> EdDSA


def check_algorithms(configured: Sequence[str], source: str, fits: Sequence[str]) -> tuple[str, ...]:
    """``JWT_ALGORITHMS`` checked against what the key fits; the first fit by default."""
    algorithms: list[str] = []
    for name in configured:
        if name.upper() == "NONE":
            raise ConfigError(f"{JWT_ALGORITHMS} must not include none")
        if name.upper() not in _CANONICAL:
            raise ConfigError(
                f"{JWT_ALGORITHMS}: unsupported algorithm {name!r} (use {', '.join(KEY_TYPES)})"
            )
        if _CANONICAL[name.upper()] not in algorithms:
            algorithms.append(_CANONICAL[name.upper()])
    if len({KEY_TYPES[alg] for alg in algorithms}) > 1:
        raise ConfigError(f"{JWT_ALGORITHMS} mixes families: {', '.join(algorithms)}")
    misfits = [alg for alg in algorithms if alg not in fits]
    if misfits:
        raise ConfigError(
            f"{JWT_ALGORITHMS}: {', '.join(misfits)} does not fit {source} (use {', '.join(fits)})"
        )
    return tuple(algorithms) or (fits[0],)


class SecretBytes(bytes):
    """Key bytes that never show in a repr, str or f-string (a log line, a traceback, a debugger);
    pyjwt and ``hmac`` take them as the bytes they are."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<secret, {len(self)} bytes>"

    __str__ = __repr__


def secret_key(secret: str, configured: Sequence[str]) -> SigningKey:
    algorithms = check_algorithms(configured, JWT_SECRET, HMAC_ALGORITHMS)
    raw = SecretBytes(secret.encode("utf-8"))
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(f"{JWT_SECRET} must be at least {MIN_SECRET_BYTES} bytes")
    for alg in algorithms:
        if len(raw) < _HMAC_MIN_BYTES[alg]:
            raise ConfigError(
                f"{JWT_SECRET} must be at least {_HMAC_MIN_BYTES[alg]} bytes for {alg} "
                "(RFC 7518 §3.2)"
            )
    try:
        HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(raw)
    except jwt.InvalidKeyError:
        raise ConfigError(
            f"{JWT_SECRET} looks like a key or certificate; put public keys in {JWT_PUBLIC_KEY}"
        ) from None
    return SigningKey(key=raw, algorithms=algorithms)


def public_key(value: str, configured: Sequence[str]) -> SigningKey:
    """A PEM public key or certificate, inline or in a file, and the algorithms it fits."""
    text = value.strip()
    if len(text) % 4 == 0 and _BARE_KEY.fullmatch(text):
        # The base64 body alone, as Keycloak's realm "Keys" page shows it.
        text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    elif not text.startswith("-----BEGIN"):
        try:
            text = Path(text).expanduser().read_text(encoding="utf-8")
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"{JWT_PUBLIC_KEY} is neither a PEM nor a readable PEM file: {e}"
            ) from None
    elif "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")  # a PEM squeezed onto one line of an .env file
    pem = text.encode("utf-8")
    if b"PRIVATE KEY-----" in pem:
        raise ConfigError(
            f"{JWT_PUBLIC_KEY} holds a private key; give the public key or certificate"
        )
    key: PublicKeyTypes
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{JWT_PUBLIC_KEY} is not a PEM public key or certificate") from None
    fits: tuple[str, ...]
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{JWT_PUBLIC_KEY}: the RSA key has {key.key_size} bits; "
                f"at least {MIN_RSA_BITS} are needed"
            )
        fits, source = RSA_ALGORITHMS, f"the RSA key in {JWT_PUBLIC_KEY}"
    elif isinstance(key, EllipticCurvePublicKey) and key.curve.name in _EC_CURVES:
        crv = _EC_CURVES[key.curve.name]
        fits, source = (CURVE_ALGORITHMS[crv],), f"the {crv} key in {JWT_PUBLIC_KEY}"
    elif isinstance(key, Ed25519PublicKey):
        fits, source = ("EdDSA",), f"the Ed25519 key in {JWT_PUBLIC_KEY}"
    else:
        raise ConfigError(
            f"{JWT_PUBLIC_KEY}: unsupported key type; use RSA, EC (P-256, P-384, P-521) or Ed25519"
        )
    return SigningKey(key=key, algorithms=check_algorithms(configured, source, fits))
