"""The OpenAPI document: ``openapi.yaml`` at the repository root, served as ``GET /openapi.json``.

The YAML is read and turned into JSON once per process, when the blueprint is first
registered (at start-up, in every worker), so a missing or broken file stops the service
instead of failing requests.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import yaml
from flask import Blueprint, Response

OPENAPI_YAML = Path(__file__).resolve().parent.parent / "openapi.yaml"

bp = Blueprint("docs", __name__)


def load_openapi(path: Path | None = None) -> dict:
    """The document (``OPENAPI_YAML`` by default) as plain data, YAML anchors resolved."""
    path = path or OPENAPI_YAML
    with open(path, encoding="utf-8") as f:
        # libyaml when the platform has it: every create_app parses this (docs/performance.md)
        document = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(document, dict) or "openapi" not in document:
        raise ValueError(f"{path} is not an OpenAPI document")
    return document


@lru_cache(maxsize=4)  # by path, not once: a test points OPENAPI_YAML at a broken file
def _as_json(path: Path) -> bytes:
    """The document as the JSON /openapi.json answers."""
    return json.dumps(load_openapi(path), ensure_ascii=False).encode("utf-8")


@bp.record_once
def _load(state) -> None:
    _as_json(OPENAPI_YAML)  # at registration: a missing or broken file stops the app from being built


@bp.get("/openapi.json")
def openapi_json():
    """This service's OpenAPI 3.1 document, as JSON."""
    return Response(_as_json(OPENAPI_YAML), mimetype="application/json")
