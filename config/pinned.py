"""The configuration the gunicorn master validated last, inherited by the workers it forks.

A configuration is a plain mapping: the variables by the names the README lists (process
environment over the ``.env`` file, over the demo configuration when that applies) and
``POLICY_TEXT``, the policy file's content as it was read. ``create_app`` takes one.

``kill -HUP`` must never take the service down. On HUP the master reads the environment
(with the ``.env`` file) and the policy file again and validates them (``gunicorn.conf.py``'s
``on_reload``); only a configuration that passed is pinned here, and the new workers are forked
with it (wsgi.py passes it to ``create_app``). A broken file is logged and the running
configuration stays in force.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .environment import effective_environment
from .names import POLICY_FILE, ConfigError

# The key of the policy file's content in a configuration. Not a variable an operator sets (one
# in the environment is dropped): the text as read, so that what was validated is what runs.
POLICY_TEXT = "POLICY_TEXT"


class Configuration(dict):
    """A configuration: a plain ``dict`` whose repr names the variables but shows no value
    (secrets are among them: the certificate, the JWT secret, a Redis password)."""

    def __repr__(self) -> str:
        return f"Configuration({', '.join(sorted(self))})"


_pinned: Configuration | None = None


def read_configuration(environ: Mapping[str, str] | None = None) -> Configuration:
    """The effective variables and the policy file's text, as they are now (``environ``
    stands in for the process environment)."""
    config = Configuration(effective_environment(environ))
    config.pop(POLICY_TEXT, None)  # only ever the file's content, never a variable of its own
    path = config.get(POLICY_FILE)
    if path:
        try:
            config[POLICY_TEXT] = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{POLICY_FILE}: cannot read {path}: {e.strerror}") from None
    return config


def pin(configuration: Mapping[str, str]) -> None:
    global _pinned
    _pinned = Configuration(configuration)


def pinned() -> Configuration | None:
    """The configuration pinned in this process (a gunicorn worker's master), else None."""
    return _pinned
