"""The OpenAPI document: ``openapi.yaml`` at the repository root, served as ``GET /openapi.json``.

The YAML is read and turned into JSON once, when the blueprint is registered (at start-up, in
every worker), so a missing or broken file stops the service instead of failing requests.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from flask import Blueprint, Response, current_app

OPENAPI_YAML = Path(__file__).resolve().parent.parent / "openapi.yaml"
_EXTENSION = "openapi_json"

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


@bp.record_once
def _load(state) -> None:
    state.app.extensions[_EXTENSION] = json.dumps(load_openapi(), ensure_ascii=False).encode("utf-8")


@bp.get("/openapi.json")
def openapi_json():
    """This service's OpenAPI 3.1 document, as JSON."""
    return Response(current_app.extensions[_EXTENSION], mimetype="application/json")
