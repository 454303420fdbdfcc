"""Where the settings' variables come from: the process environment over a ``.env`` file, and,
for ``make run`` without an ``APP_ID``, the committed demo configuration beneath both.

Every setting is read from ``os.environ`` here, and nowhere else. The ``.env`` file (in the
working directory, or the one ``ENV_FILE`` names) is read by python-dotenv: comments,
``export``, single and double quotes (escapes in double quotes), values spanning lines inside
quotes. Values are taken literally: no ``${VAR}`` expansion. Empty variables count as unset.
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from .names import APP_ID, DEMO_FALLBACK, DEMO_MODE, ENV_FILE, POLICY_FILE, ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
DEMO_ENV_FILE = CONFIG_DIR / "demo.env"


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """The variables a ``.env`` file sets.

    dotenv skips a line it cannot parse with a warning, and reads a name alone (no ``=``) as
    "no value"; either is a ``ConfigError`` naming the file and line here, since either is
    most likely a setting lost to a typo (or a PEM pasted across lines without quotes).
    """
    text = Path(path).read_text(encoding="utf-8")
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(f"{path}:{binding.original.line}: expected KEY=value")
        if binding.key is not None and binding.value is None:
            raise ConfigError(f"{path}:{binding.original.line}: expected KEY=value, got {binding.key!r} "
                              f"alone (write {binding.key}= for an empty value)")
    # No None among the values: dotenv's None is a name alone, refused above.
    return dict(cast(Mapping[str, str], dotenv_values(stream=io.StringIO(text), interpolate=False)))


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The effective variables: the process environment over the ``.env`` file, if any."""
    env = dict(os.environ if environ is None else environ)
    env_file = env.get(ENV_FILE) or ".env"
    merged = read_env_file(env_file) if Path(env_file).is_file() else {}
    merged.update({k: v for k, v in env.items() if v != ""})
    return {k: v for k, v in merged.items() if v != ""}


def demo_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The committed demo configuration under whatever the environment already sets."""
    env = read_env_file(DEMO_ENV_FILE)
    env[POLICY_FILE] = str(CONFIG_DIR.parent / env[POLICY_FILE])
    env.update(environment(environ))
    env[DEMO_MODE] = "1"
    return env


def effective_environment(environ: Mapping[str, str] | None = None, *,
                          demo: bool | None = None) -> dict[str, str]:
    """The variables the settings are read from: environment, ``.env`` file, demo layer.

    ``demo`` layers the committed demo configuration under the environment; by default that
    happens only when ``DEMO_FALLBACK`` is set (``make run`` does) and ``APP_ID`` is not.
    The Procfile never sets it, so production never runs on demo credentials.
    """
    if demo is None:
        env = environment(environ)
        demo = truthy(env.get(DEMO_FALLBACK)) and APP_ID not in env
    return demo_environment(environ) if demo else environment(environ)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
