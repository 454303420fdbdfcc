"""Who is asking (a verified JWT) and what they may have (the operator's policy).

``Auth`` bundles the two, built once at start-up from the settings; the service calls
``authenticate(authorization_header)`` and ``policy.decide(identity, request)``.

Modules, each importing only those above it: ``models`` and ``patterns`` (plain values and
matchers), ``grants``, ``policy`` (decisions), ``policy_file`` (the YAML reader); ``keys``
(key types and the configured key), ``jwks`` (a remote key set), ``jwt`` (the verifier); ``dev``
(the ``dev-jwt`` command).
"""
from __future__ import annotations

from collections.abc import Callable

from config.names import POLICY_FILE, ConfigError
from config.settings import Settings

from .jwt import JWTVerifier, bearer_token
from .models import Identity, PolicyDecision, TokenRequest
from .policy import Policy
from .policy_file import PolicyError, load_policy, read_policy

__all__ = ["Auth", "Identity", "Policy", "PolicyDecision", "PolicyError", "TokenRequest", "load_policy",
           "read_policy"]


class Auth:
    """The JWT verifier and the policy, built together from the settings (the app's extension,
    api/extension.py, holds one)."""

    def __init__(self, verifier: JWTVerifier, policy: Policy):
        self.verifier = verifier
        self.policy = policy

    @classmethod
    def from_settings(cls, settings: Settings, policy_text: str | None = None, *,
                      on_jwks_fetch: Callable[[str], None] | None = None) -> Auth:
        """Build both from the settings; ``policy_text`` stands in for the policy file's content;
        ``on_jwks_fetch`` hears each JWKS fetch's result."""
        if not settings.policy_file:
            raise ConfigError(f"{POLICY_FILE} is not set: the service grants nothing without a policy "
                              "(see config/policy.example.yaml)")
        policy = (load_policy(settings.policy_file) if policy_text is None
                  else read_policy(policy_text, source=settings.policy_file))
        return cls(JWTVerifier.from_settings(settings, on_jwks_fetch), policy)

    def authenticate(self, authorization: str | None) -> Identity:
        """The verified identity behind an ``Authorization`` header, or ``Unauthorized``."""
        return self.verifier.verify(bearer_token(authorization))
