"""Requests per second and latency over HTTP: this service, served as the Procfile serves it,
against the peer operators run today (bench/peer: express + cors + Agora's agora-token, no
authentication), on the same route, on one machine, in alternating rounds.

    python bench/load.py                 (from the repository root; or: make bench)
    python bench/load.py --redis         also ours with RATELIMIT_STORAGE_URI on a local Redis

Ours runs with everything on: a JWT on every request (HS256, issuer and audience checked), the
policy, both rate limits (set high enough that wrk is never refused), CORS with an allowed
Origin, and the JSON access and audit lines (to a log file, as they would go to a collector).
wrk cycles through a pool of callers, each with its own JWT, channel and uid. After a warm-up,
the targets take turns (ABAB…), a few seconds each; the table gives each target's median round
and the spread of its rounds, since the machine is shared. It also prints the service's
start-up time and each worker's resident memory.

Prints numbers only and never fails on timing. It does fail when a response is not a 200, since
then the numbers would measure something else.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.common import APP_CERTIFICATE, APP_ID, AUDIENCE, ISSUER, JWT_SECRET, sign_jwt
from tools.procs import (
    RedisServer, ensure_installed, free_port, procfile_command, stop, wait_for_port,
)

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
PEER = _HERE / "peer"
ORIGIN = "https://app.example.com"
# On, and far above what wrk can send: a 429 would measure the refusal path instead.
HIGH_LIMIT = "1000000000/minute"
TICKS = os.sysconf("SC_CLK_TCK")

POLICY = """\
# bench/load.py: every bench caller may publish in any bench-* channel as any uid.
grants:
  - when: {groups: [bench]}
    rtc: {channels: ["bench-*"], roles: [publisher], uids: [any], max_expire: 86400}
"""

# wrk: cycle through pre-formatted requests; print the summary as one JSON line.
WRK_SCRIPT = """\
local pool = {%(pool)s}
local requests = {}
local n = 0

init = function(args)
  for _, item in ipairs(pool) do
    requests[#requests + 1] = wrk.format("GET", item[1], {
      ["Authorization"] = "Bearer " .. item[2],
      ["Origin"] = "%(origin)s",
      ["Host"] = wrk.headers["Host"],
    })
  end
end

request = function()
  n = n %% #requests + 1
  return requests[n]
end

done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Target:
    name: str
    url: str
    proc: subprocess.Popen
    rounds: list[dict] = field(default_factory=list)


def bench_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The service's whole configuration for the benchmark (no .env file is read)."""
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY)
    return {
        "PATH": os.environ.get("PATH", ""),
        "APP_ID": APP_ID,
        "APP_CERTIFICATE": APP_CERTIFICATE,
        "JWT_SECRET": JWT_SECRET,
        "JWT_ALGORITHMS": "HS256",
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "POLICY_FILE": str(policy),
        "RATE_LIMIT_PER_USER": HIGH_LIMIT,
        "RATE_LIMIT_PER_IP": HIGH_LIMIT,
        "CORS_ALLOW_ORIGIN": ORIGIN,
        "ENV_FILE": str(workdir / "no.env"),
        **extra,
    }


def pool(size: int) -> list[tuple[str, str]]:
    """(path, JWT) per caller: each its own subject, channel and uid."""
    return [(f"/rtc/bench-{i}/publisher/uid/{1000 + i}/",
             sign_jwt(f"bench-user-{i}", groups=["bench"], lifetime=3600, secret=JWT_SECRET,
                      iss=ISSUER, aud=AUDIENCE))
            for i in range(size)]


def write_wrk_script(workdir: Path, callers: list[tuple[str, str]]) -> Path:
    items = ", ".join(f'{{"{path}", "{jwt}"}}' for path, jwt in callers)
    script = workdir / "pool.lua"
    script.write_text(WRK_SCRIPT % {"pool": items, "origin": ORIGIN})
    return script


def start_ours(name: str, env: dict[str, str], workdir: Path, gunicorn_args: str | None,
               app: str | None = None) -> Target:
    """The Procfile's command as is: WEB_CONCURRENCY and worker settings from gunicorn.conf.py
    unless the caller's environment sets them. ``app`` serves another WSGI app the same way."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    if os.environ.get("WEB_CONCURRENCY"):
        env["WEB_CONCURRENCY"] = os.environ["WEB_CONCURRENCY"]
    if gunicorn_args:
        env["GUNICORN_CMD_ARGS"] = gunicorn_args
    with open(workdir / f"{name.replace(' ', '-').replace(',', '')}.log", "ab") as log:
        command = procfile_command()
        if app:
            command[-1] = app
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    wait_for_port(port, proc=proc, timeout=30)
    return Target(name, f"http://127.0.0.1:{port}", proc)


def start_peer(workdir: Path) -> Target:
    node = ensure_installed("node", "nodejs")
    if not (PEER / "node_modules").is_dir():
        npm = ensure_installed("npm", "npm")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER, check=True)
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PORT": str(port), "NODE_ENV": "production",
           "APP_ID": APP_ID, "APP_CERTIFICATE": APP_CERTIFICATE}
    with open(workdir / "peer.log", "ab") as log:
        proc = subprocess.Popen([node, "server.js"], cwd=PEER, env=env, stdout=log, stderr=log,
                                start_new_session=True)
    wait_for_port(port, proc=proc)
    return Target("peer (express)", f"http://127.0.0.1:{port}", proc)


BARE = "bare Flask"


def check(target: Target, callers: list[tuple[str, str]]) -> None:
    """One request per caller: every answer must be a 200 with a token, before any timing."""
    with requests.Session() as http:
        for path, jwt in callers:
            r = http.get(target.url + path, headers={"Authorization": f"Bearer {jwt}", "Origin": ORIGIN},
                         timeout=10)
            if r.status_code != 200 or not r.json().get("rtcToken", "").startswith("007"):
                raise SystemExit(f"{target.name}: {path} answered {r.status_code} {r.text[:200]}")


def wrk(wrk_bin: str, script: Path, url: str, seconds: float, threads: int, connections: int) -> dict:
    out = subprocess.run(
        [wrk_bin, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
         "-s", str(script), url],
        capture_output=True, text=True, check=True).stdout
    line = next(text for text in out.splitlines() if text.startswith("WRK "))
    result = json.loads(line[4:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and the processes under it (gunicorn's workers)."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            fields_ = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields_[11]) + int(fields_[12])) / TICKS
    return total


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 1)[0]


def descendants(pid: int) -> list[int]:
    """The pids under ``pid`` (gunicorn's workers), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry.name))
    return sorted(children)


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB, from /proc/<pid>/smaps_rollup."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0]) / 1024
    return values["Rss"], values["Pss"]


def startup(env: dict[str, str], repeats: int = 5) -> tuple[float, float]:
    """Median seconds to import wsgi (the app built and ready), and for the whole process."""
    code = "import time; t = time.perf_counter(); import wsgi; print(time.perf_counter() - t)"
    inside, whole = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True).stdout
        whole.append(time.perf_counter() - started)
        inside.append(float(out.strip().splitlines()[-1]))
    return statistics.median(inside), statistics.median(whole)


def ready_time(env: dict[str, str], workdir: Path, gunicorn_args: str | None) -> float:
    """Seconds from starting the Procfile command to the first 200 from /healthz."""
    started = time.perf_counter()
    target = start_ours("ready", env, workdir, gunicorn_args)
    try:
        while True:
            try:
                if requests.get(target.url + "/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            if time.perf_counter() - started > 30:
                raise SystemExit("the service never became healthy")
            time.sleep(0.01)
    finally:
        stop(target.proc)


def med(t: Target, key: str) -> float:
    return statistics.median(r[key] for r in t.rounds)


def report(targets: list[Target], peer: Target) -> None:
    """Each target's median round, against the peer's; and how far apart its rounds were."""
    print(f"\n{'':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}"
          f"{'req/s ÷ peer':>14}{'p99 ÷ peer':>12}   req/s of each round")
    for t in targets:
        rounds = " ".join(f"{r['rps']:.0f}" for r in t.rounds)
        print(f"{t.name:<22}{med(t, 'rps'):>9.0f}{med(t, 'p50_us') / 1000:>9.2f}"
              f"{med(t, 'p99_us') / 1000:>9.2f}{med(t, 'cpu_us'):>12.0f}"
              f"{med(t, 'rps') / med(peer, 'rps'):>14.2f}{med(t, 'p99_us') / med(peer, 'p99_us'):>12.2f}"
              f"   {rounds}")
    spread = max(max(r["rps"] for r in t.rounds) / min(r["rps"] for r in t.rounds) - 1 for t in targets)
    print(f"(medians of the rounds; one target's rounds were at most {spread:.0%} apart. CPU µs/req "
          "is the server's user + system time over its requests: steadier than req/s on a shared machine)")


def memory(targets: list[Target]) -> list[float]:
    """Print each process's RSS and PSS; return the RSS of our workers."""
    print("\nresident memory after the load (MB): RSS / PSS")
    workers_rss = []
    for t in targets:
        if not t.name.startswith("ours") and t.name != BARE:
            rss, pss = memory_mb(t.proc.pid)
            print(f"  {t.name:<22}{rss:.1f} / {pss:.1f}")
            continue
        rows = [memory_mb(pid) for pid in descendants(t.proc.pid)]
        if t.name.startswith("ours"):
            workers_rss += [rss for rss, _ in rows]
        master = memory_mb(t.proc.pid)
        print(f"  {t.name:<22}" + ", ".join(f"{rss:.1f} / {pss:.1f}" for rss, pss in rows)
              + f" per worker ({len(rows)}); master {master[0]:.1f} / {master[1]:.1f}")
    return workers_rss


def targets_met(ours: Target, peer: Target | None, redis: Target | None, bare: Target | None,
                import_s: float, workers_rss: list[float]) -> None:
    """The issue's targets, as numbers beside their thresholds (printed, never enforced)."""
    def line(what: str, value: str, met: bool) -> None:
        print(f"  {what:<56}{value:<26}{'met' if met else 'NOT met'}")

    print("\ntargets")
    if peer:
        ratio = med(ours, "rps") / med(peer, "rps")
        line("req/s at least 0.5x the peer's (goal 1.0x)", f"{ratio:.2f}x the peer", ratio >= 0.5)
        p99, peer_p99 = med(ours, "p99_us") / 1000, med(peer, "p99_us") / 1000
        line("p99 no worse than the peer's", f"{p99:.1f} ms vs {peer_p99:.1f} ms", p99 <= peer_p99)
    line("import wsgi under 0.5 s", f"{import_s * 1000:.0f} ms", import_s < 0.5)
    line("RSS per worker under 60 MB", f"{max(workers_rss):.1f} MB (largest)", max(workers_rss) < 60)
    if redis:
        ratio = med(redis, "rps") / med(ours, "rps")
        line("with Redis limits, at least 0.7x the in-memory req/s", f"{ratio:.2f}x", ratio >= 0.7)
    if bare:
        print(f"  {'ours against the bare Flask app on the same gunicorn':<56}"
              f"{med(ours, 'rps') / med(bare, 'rps'):.2f}x its req/s (the stack's ceiling; no target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="length of each round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target (default 3)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per target (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--callers", type=int, default=64, help="distinct JWTs, channels, uids (default 64)")
    parser.add_argument("--redis", action="store_true", help="also ours with the rate limits in a local Redis")
    parser.add_argument("--gunicorn-args", default=os.environ.get("GUNICORN_CMD_ARGS"),
                        help="extra gunicorn options for ours, e.g. '--workers 3 --worker-class gthread'")
    parser.add_argument("--no-peer", action="store_true", help="ours only (the ratios are then to ours)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Flask app (the stack's ceiling)")
    args = parser.parse_args()

    wrk_bin = ensure_installed("wrk", "wrk")
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    env = bench_env(workdir)
    callers = pool(args.callers)
    script = write_wrk_script(workdir, callers)
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, node {_node_version()}; "
          f"wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds of {args.seconds:g} s per "
          f"target after {args.warmup:g} s of warm-up; {args.callers} callers")
    print(f"ours: {' '.join(procfile_command()[1:])}"
          f"{'  GUNICORN_CMD_ARGS=' + repr(args.gunicorn_args) if args.gunicorn_args else ''}"
          f"{'  WEB_CONCURRENCY=' + os.environ['WEB_CONCURRENCY'] if os.environ.get('WEB_CONCURRENCY') else ''}")
    print(f"logs and configuration: {workdir}")

    import_s, whole_s = startup(env)
    ready = ready_time(env, workdir, args.gunicorn_args)
    print(f"start-up: import wsgi {import_s * 1000:.0f} ms (whole python process {whole_s * 1000:.0f} ms); "
          f"Procfile command to first /healthz 200: {ready * 1000:.0f} ms")

    targets: list[Target] = []
    redis = peer = ours_redis = bare = None
    try:
        ours = start_ours("ours", env, workdir, args.gunicorn_args)
        targets.append(ours)
        if not args.no_peer:
            peer = start_peer(workdir)
            targets.append(peer)
        if args.redis:
            redis = RedisServer(workdir)
            redis.start()
            ours_redis = start_ours("ours, Redis limits", {**env, "RATELIMIT_STORAGE_URI": redis.url},
                                    workdir, args.gunicorn_args)
            targets.append(ours_redis)
        if not args.no_bare:
            bare = start_ours(BARE, env, workdir, args.gunicorn_args, app="bench.bare:app")
            targets.append(bare)
        for t in targets:
            check(t, callers)
            wrk(wrk_bin, script, t.url, args.warmup, args.threads, args.connections)
        print(f"\n{'round':<7}{'target':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/req':>12}"
              f"{'errors':>8}{'load':>7}")
        for n in range(1, args.rounds + 1):
            for t in targets:
                cpu = cpu_seconds(t.proc.pid)
                r = wrk(wrk_bin, script, t.url, args.seconds, args.threads, args.connections)
                r["cpu_us"] = (cpu_seconds(t.proc.pid) - cpu) / r["requests"] * 1e6
                t.rounds.append(r)
                print(f"{n:<7}{t.name:<22}{r['rps']:>9.0f}{r['p50_us'] / 1000:>9.2f}"
                      f"{r['p99_us'] / 1000:>9.2f}{r['cpu_us']:>12.0f}{r['errors']:>8}{loadavg():>7}", flush=True)
                if r["errors"]:
                    raise SystemExit(f"{t.name}: {r['errors']} failed requests (see {workdir})")
        report(targets, peer or ours)
        workers_rss = memory(targets)
        targets_met(ours, peer, ours_redis, bare, import_s, workers_rss)
    finally:
        for t in targets:
            stop(t.proc)
        if redis:
            redis.kill()
    shutil.rmtree(workdir, ignore_errors=True)


def _node_version() -> str:
    node = shutil.which("node")
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip() if node else "-"


if __name__ == "__main__":
    main()
