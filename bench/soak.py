"""Soak: the service as the Procfile runs it, under mixed load for a while (10 minutes by default).

    python bench/soak.py [--duration 600] [--concurrency 8] [--workers 2]    (or: make soak)

It writes a configuration of its own to a temporary directory (a fresh APP_ID and
APP_CERTIFICATE, an HS256 secret, a policy, rate limits out of reach) and starts gunicorn from
the Procfile on a free loopback port with it. The load mixes every contract with valid JWTs,
JWTs the service must refuse (401 is the right answer) and requests the policy refuses (403 is
the right answer). An error is anything else: a failed connection, a timeout, a 5xx, an
unexpected status or body, an error line in the service's log, or a worker that was replaced.

Prints requests, errors, latency percentiles per time window and each worker's resident memory
(VmRSS) at boot, after the first window (warm-up) and at the end. Never fails on the numbers:
the last line is the verdict (0 errors, memory growth from warm-up to end under 10%).
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path: put the repository root there instead, so
# that the project's packages import as they do in the service.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import secrets  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import requests  # noqa: E402

from bench.common import AUDIENCE, ISSUER, sign_jwt  # noqa: E402
from tools.procs import gunicorn, rss_kib  # noqa: E402 (the start-up the integration tests use)

POLICY = """\
grants:
  - when: {groups: [ops]}
    rtc: {channels: ["*"], roles: [publisher, subscriber], uids: [any], max_expire: 86400}
    rtm: {users: [any], max_expire: 86400}
    chat: {users: [any], app: true, max_expire: 86400}
  - when: authenticated
    rtc: {channels: [lobby], roles: [subscriber], uids: [self], max_expire: 600}
"""
MAX_GROWTH = 0.10
USERS = 200  # distinct callers: each has its own rate-limit bucket, as in real use


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # may hold {ch} (a channel), {uid} (a numeric uid) and {user} (an account)
    body: dict | None
    caller: str  # "ops" (granted), "viewer" (refused by the policy), or a kind of bad JWT
    status: int  # the right answer
    key: str | None = None  # a JSON key the 200 must carry; "" for the plain-text token

    def request(self, rng: random.Random) -> tuple[str, str, dict | None]:
        values = {"ch": f"soak-{rng.randrange(10_000)}", "uid": rng.randrange(1, 2**32),
                  "user": f"user-{rng.randrange(10_000)}"}
        body = None if self.body is None else {
            k: v.format(**values) if isinstance(v, str) else v for k, v in self.body.items()}
        return self.method, self.path.format(**values), body


GRANTED = [
    Call("POST", "/fetch_rtc_token", {"uid": 1234, "ChannelName": "{ch}", "role": 1}, "ops", 200, "token"),
    Call("GET", "/rtc/{ch}/publisher/uid/{uid}/", None, "ops", 200, "rtcToken"),
    Call("GET", "/rtc/{ch}/subscriber/userAccount/{user}/?expiry=600", None, "ops", 200, "rtcToken"),
    Call("GET", "/rtm/{user}/", None, "ops", 200, "rtmToken"),
    Call("GET", "/rte/{ch}/publisher/uid/{uid}/", None, "ops", 200, "rtmToken"),
    Call("GET", "/chat/app/", None, "ops", 200, "chatToken"),
    Call("GET", "/chat/account/{user}/", None, "ops", 200, "chatToken"),
    Call("POST", "/getToken", {"tokenType": "rtc", "channel": "{ch}", "role": "publisher", "uid": "{user}"},
         "ops", 200, "token"),
    Call("POST", "/generate-user-token", {"user_uuid": "{user}", "expire": 600}, "ops", 200, "token"),
    Call("POST", "/generate-app-token", {"expire": 600}, "ops", 200, "token"),
    Call("GET", "/access_token?channel={ch}&uid={uid}&role=publisher", None, "ops", 200, "token"),
    Call("GET", "/v1/token?channel_name={ch}", None, "ops", 200, ""),
    Call("GET", "/healthz", None, "none", 200, "status"),
]
UNAUTHENTICATED = [Call("GET", "/rtm/{user}/", None, bad, 401) for bad in ("none", "garbage", "forged", "expired")]
UNAUTHENTICATED += [Call("POST", "/getToken", {"tokenType": "rtm", "uid": "{user}"}, "forged", 401)]
DENIED = [
    Call("GET", "/rtc/{ch}/publisher/uid/{uid}/", None, "viewer", 403),
    Call("GET", "/rtc/lobby/publisher/userAccount/{user}/", None, "viewer", 403),
    Call("GET", "/chat/app/", None, "viewer", 403),
]
MIX = [(GRANTED, 0.75), (UNAUTHENTICATED, 0.125), (DENIED, 0.125)]


def configuration(workdir: Path, lifetime: int) -> tuple[dict, dict[str, list[str]]]:
    """The env file and policy in ``workdir``, the environment naming them, and JWTs per caller."""
    secret = secrets.token_urlsafe(48)
    (workdir / "policy.yaml").write_text(POLICY)
    settings = {
        "APP_ID": secrets.token_hex(16), "APP_CERTIFICATE": secrets.token_hex(16),
        "JWT_SECRET": secret, "JWT_ALGORITHMS": "HS256", "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE,
        "POLICY_FILE": str(workdir / "policy.yaml"),
        "RATE_LIMIT_PER_USER": "1000000/minute", "RATE_LIMIT_PER_IP": "10000000/minute",
    }
    (workdir / "service.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    def sign(sub, groups=None, key=secret, **claims):
        return "Bearer " + sign_jwt(sub, groups=groups, lifetime=lifetime, secret=key, **claims)

    callers = {
        "ops": [sign(f"ops-{i}", ["ops"]) for i in range(USERS)],
        "viewer": [sign(f"viewer-{i}") for i in range(USERS)],
        "forged": [sign("ops-0", ["ops"], key=secrets.token_urlsafe(48))],
        "expired": [sign("ops-0", ["ops"], exp=int(time.time()) - 3600)],
        "garbage": ["Bearer not.a.jwt"],
    }
    return {"ENV_FILE": str(workdir / "service.env")}, callers


class Load:
    """``concurrency`` threads sending the mix until ``stop``; every request is kept as
    (seconds since start at its end, latency in seconds, error or None, status)."""

    def __init__(self, url: str, callers: dict[str, list[str]], concurrency: int, start: float):
        self.url, self.callers, self.start = url, callers, start
        self.stop = threading.Event()
        self.records: list[list[tuple[float, float, str | None, int | None]]] = [[] for _ in range(concurrency)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(concurrency)]

    def _run(self, index: int) -> None:
        rng, out, session = random.Random(index), self.records[index], requests.Session()
        groups, weights = zip(*MIX, strict=True)
        while not self.stop.is_set():
            call = rng.choice(rng.choices(groups, weights)[0])
            method, path, body = call.request(rng)
            jwts = self.callers.get(call.caller)
            headers = {"Authorization": rng.choice(jwts)} if jwts else {}
            began = time.monotonic()
            try:
                r = session.request(method, self.url + path, json=body, headers=headers, timeout=10)
            except requests.RequestException as e:
                done = time.monotonic()
                out.append((done - self.start, done - began, f"{type(e).__name__} on {method} {call.path}", None))
                continue
            done = time.monotonic()
            out.append((done - self.start, done - began, check(call, r), r.status_code))


def check(call: Call, r: requests.Response) -> str | None:
    """None when ``r`` is the right answer to ``call``, else what is wrong with it."""
    where = f"{call.method} {call.path} ({call.caller})"
    if r.status_code != call.status:
        return f"{r.status_code} instead of {call.status} on {where}"
    if call.key == "":
        return None if r.text.startswith("007") else f"no token in the text of {where}"
    try:
        body = r.json()
    except ValueError:
        return f"a body that is not JSON on {where}"
    if call.key is not None and call.key not in body:
        return f"no {call.key} in the answer to {where}"
    if call.status != 200 and body.get("code") != str(call.status):
        return f"an error body without code {call.status} on {where}"
    return None


def resident(pids: list[int]) -> dict[int, int]:
    """KiB of resident memory per pid, leaving out any that has just exited."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, ProcessLookupError):
            found[pid] = rss_kib(pid)
    return found


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)] if sorted_values else float("nan")


def log_errors(path: Path) -> list[str]:
    """The service log's error lines: JSON lines at level error, gunicorn's [ERROR]/[CRITICAL]."""
    found = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("{"):
                try:
                    level = json.loads(line).get("level")
                except ValueError:
                    level = "garbled"
                if level in ("error", "critical", "garbled"):
                    found.append(line.strip())
            elif "[ERROR]" in line or "[CRITICAL]" in line or line.startswith("Traceback"):
                found.append(line.strip())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--interval", type=float, help="seconds per row of the table (default duration/10, ≥ 5)")
    args = parser.parse_args()
    interval = args.interval or max(5.0, args.duration / 10)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = Path(tmp)
        env, callers = configuration(workdir, lifetime=int(args.duration) + 3600)
        with gunicorn(env, workers=args.workers, log_path=workdir / "service.log") as service:
            workers = service.worker_pids()
            boot = resident(workers)
            print(f"soak: {args.duration:g} s, {args.concurrency} client threads, {args.workers} workers "
                  f"(pids {', '.join(map(str, workers))}), {service.url}, configuration in {workdir} (deleted at the end)")
            start = time.monotonic()
            load = Load(service.url, callers, args.concurrency, start)
            for thread in load.threads:
                thread.start()
            samples: list[tuple[float, dict[int, int]]] = []  # (window end, RSS per worker)
            replaced = False
            try:
                while (elapsed := time.monotonic() - start) < args.duration:
                    edge = min(args.duration, (math.floor(elapsed / interval) + 1) * interval)
                    time.sleep(max(0.0, edge - (time.monotonic() - start)))
                    now = service.worker_pids()
                    replaced |= now != workers
                    samples.append((edge, resident(now)))
            except KeyboardInterrupt:
                print("interrupted: reporting what ran so far")
            finally:
                load.stop.set()
                for thread in load.threads:
                    thread.join(15)
            ran = time.monotonic() - start
            replaced |= service.worker_pids() != workers
        log_lines = log_errors(workdir / "service.log")

    report(load, samples, boot, workers, ran, replaced, log_lines, complete=ran >= args.duration)


def report(load: Load, samples, boot: dict[int, int], workers: list[int], ran: float,
           replaced: bool, log_lines: list[str], complete: bool) -> None:
    records = sorted((r for per_thread in load.records for r in per_thread), key=lambda r: r[0])
    errors = Counter(r[2] for r in records if r[2])
    statuses = Counter(r[3] for r in records)
    mib = lambda kib: f"{kib / 1024:.1f}"  # noqa: E731

    print(f"\n{'window':>13}{'requests':>10}{'req/s':>8}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'max ms':>9}   RSS MiB per worker")
    edges = [0.0] + [t for t, _ in samples]
    # One edge more than samples: a window runs from an edge to its sample's time; the last
    # edge opens the interrupted window below, if there is one.
    windows = [(lo, hi, rss) for lo, (hi, rss) in zip(edges, samples, strict=False)]
    if ran > edges[-1] + 0.5:  # interrupted inside a window
        windows.append((edges[-1], ran, {}))
    for lo, hi, rss in windows:
        window = [r for r in records if lo <= r[0] < hi or (hi == windows[-1][1] and r[0] >= hi)]
        lat = sorted(r[1] * 1000 for r in window)
        print(f"{f'{lo:.0f}-{hi:.0f} s':>13}{len(window):>10,}{len(window) / max(hi - lo, 1e-9):>8.0f}"
              f"{sum(1 for r in window if r[2]):>8}{percentile(lat, 0.5):>9.1f}{percentile(lat, 0.99):>9.1f}"
              f"{(lat[-1] if lat else float('nan')):>9.1f}   {' '.join(mib(v) for v in rss.values())}")

    lat = sorted(r[1] * 1000 for r in records)
    print(f"\nrequests: {len(records):,} in {ran:.0f} s ({len(records) / ran:.0f}/s); answers: "
          + ", ".join(f"{s if s else 'none'}: {n:,}" for s, n in sorted(statuses.items(), key=lambda x: x[0] or 0)))
    print(f"errors: {sum(errors.values())}" + "".join(f"\n  {n} × {e}" for e, n in errors.most_common(10)))
    print(f"latency: p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
          f"max {(lat[-1] if lat else float('nan')):.1f} ms")

    growths = []
    print(f"\nresident memory (VmRSS, MiB){'boot':>10}{'warm-up':>10}{'end':>10}{'growth':>10}{'since boot':>12}")
    warm = samples[0][1] if len(samples) > 1 else {}
    end = samples[-1][1] if len(samples) > 1 else {}
    for pid in workers:
        if pid in warm and pid in end:
            growth = end[pid] / warm[pid] - 1
            growths.append(growth)
            print(f"  worker {pid:<21}{mib(boot[pid]):>10}{mib(warm[pid]):>10}{mib(end[pid]):>10}"
                  f"{growth:>+10.1%}{end[pid] / boot[pid] - 1:>+12.1%}")
    print("  (growth: from the end of the first window, when every code path has run, to the end)")
    if log_lines:
        print(f"\nservice log: {len(log_lines)} error lines, the first:\n  " + "\n  ".join(log_lines[:5]))

    problems = []
    if errors:
        problems.append(f"{sum(errors.values())} errors")
    if log_lines:
        problems.append(f"{len(log_lines)} error lines in the service log")
    if replaced:
        problems.append("a worker was replaced (crash or timeout)")
    if not growths:
        problems.append("no memory growth measured (the run had fewer than two windows)")
    elif max(growths) >= MAX_GROWTH:
        problems.append(f"memory grew {max(growths):+.1%} (limit {MAX_GROWTH:.0%})")
    if not records:
        problems.append("no request was answered")
    worst = f"{max(growths):+.1%}" if growths else "n/a"
    if not complete:
        print(f"\nVERDICT: INCOMPLETE: interrupted after {ran:.0f} s" + "".join(f"; {p}" for p in problems))
        return
    print("\nVERDICT: " + (f"FAIL: {'; '.join(problems)}" if problems else
                           f"PASS: {len(records):,} requests, 0 errors, p99 {percentile(lat, 0.99):.1f} ms, "
                           f"worst worker memory growth {worst} (< {MAX_GROWTH:.0%})"))


if __name__ == "__main__":
    main()
