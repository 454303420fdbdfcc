"""Prometheus metrics: ``GET /metrics`` in the text format, summed over gunicorn's workers.

prometheus_client counts in each worker; with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py
creates and cleans it), every worker writes its figures to files there and the scrape adds them
up, so the totals survive a worker's restart. Without it (tests, ``flask run``) the figures are
this process's.

No label carries what a client chooses freely (a subject, a channel, a uid, a path): routes
are Flask's rule strings, and every other label comes from a short fixed list.
"""
from __future__ import annotations

import os
from functools import cache

from flask import Blueprint, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
)
from prometheus_client import multiprocess

from auth.models import PolicyDecision, TokenRequest
from exceptions import Unauthorized

from .observability import UNROUTED, elapsed

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

TOKENS_ISSUED = Counter("agora_tokens_issued_total", "Tokens signed, by service and contract (route).",
                        ["service", "contract"])
DECISIONS = Counter("agora_policy_decisions_total",
                    "Policy decisions: outcome granted, capped (granted with a shorter lifetime) or "
                    "denied; refused names what was refused (none when granted).",
                    ["outcome", "refused"])
JWT_REJECTIONS = Counter("agora_jwt_rejections_total", "Requests refused a 401, by reason.", ["reason"])
JWKS_FETCHES = Counter("agora_jwks_fetches_total", "JWKS fetches, by result.", ["result"])
RATE_LIMITED = Counter("agora_rate_limited_total",
                       "Requests refused a 429, by limit: ip, user, or route (a limit declared on a route).",
                       ["limit"])
STORAGE_DEGRADED = Gauge("agora_rate_limit_storage_degraded",
                         "1 while a worker counts rate limits in its own memory (storage unreachable).",
                         multiprocess_mode="livemax")
LATENCY = Histogram("agora_request_duration_seconds", "Request latency, by route and status class.",
                    ["route", "status"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))

bp = Blueprint("metrics", __name__)


@cache
def _child(metric, *labels: str):
    """``metric.labels(*labels)``, looked up once: every label value comes from a short fixed
    list or the app's rules, and ``labels()`` checks, converts and locks on every call."""
    return metric.labels(*labels)


@bp.get("/metrics")
def metrics():
    """The service's metrics, in Prometheus' text format."""
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def report_every_rejection_reason() -> None:
    """Every 401 reason a series from the start, at 0 (in a worker, not in the gunicorn master,
    which imports this module too but serves nothing)."""
    for reason in Unauthorized.REASONS:
        JWT_REJECTIONS.labels(reason)


def decided(want: TokenRequest, decision: PolicyDecision) -> None:
    if not decision.granted:
        _child(DECISIONS, "denied", decision.refused or "other").inc()
    elif decision.expire < want.expire:
        _child(DECISIONS, "capped", "lifetime").inc()
    else:
        _child(DECISIONS, "granted", "none").inc()


def issued(want: TokenRequest) -> None:
    _child(TOKENS_ISSUED, want.service, request.endpoint or UNROUTED).inc()


def jwt_rejected(reason: str) -> None:
    JWT_REJECTIONS.labels(reason).inc()


def jwks_fetched(result: str) -> None:
    JWKS_FETCHES.labels(result).inc()


def rate_limited(scope: str) -> None:
    RATE_LIMITED.labels(scope if scope in ("ip", "user") else "route").inc()


def storage_degraded(degraded: bool) -> None:
    STORAGE_DEGRADED.set(1 if degraded else 0)


def observe(response: Response) -> None:
    """The request's latency, by route and status class (api/extension.py's last steps)."""
    seconds = elapsed()  # from observability's first hook: one clock for the log and the histogram
    if seconds is not None:
        rule = request.url_rule
        _child(LATENCY, rule.rule if rule is not None else UNROUTED,
               f"{response.status_code // 100}xx").observe(seconds)
