"""The configuration the gunicorn master validated last, inherited by the workers it forks.

``kill -HUP`` must never take the service down. On HUP the master reads the environment
(with the ``.env`` file) and the policy file again and validates them (``gunicorn.conf.py``'s
``on_reload``); only a configuration that passed is pinned here, and the new workers are forked
with it. A broken file is logged and the running configuration stays in force.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .environment import effective_environment
from .names import POLICY_FILE, ConfigError


@dataclass(frozen=True)
class Configuration:
    environment: Mapping[str, str] = field(repr=False)  # every setting, secrets included
    policy_text: str | None  # None: read the policy file when the app is built


_pinned: Configuration | None = None


def read_configuration(environ: Mapping[str, str] | None = None) -> Configuration:
    """The effective variables and the policy file's text, as they are now."""
    env = effective_environment(environ)
    path = env.get(POLICY_FILE)
    text = None
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{POLICY_FILE}: cannot read {path}: {e.strerror}") from None
    return Configuration(env, text)


def pin(configuration: Configuration) -> None:
    global _pinned
    _pinned = configuration


def pinned() -> Configuration | None:
    return _pinned
