"""Microseconds per publisher RTC token: ours (AccessToken2, "007") against agora-token-builder's
older "006" tokens (RtcTokenBuilder.buildTokenWithUid), in the same process, rounds alternating.

    python bench/tokens.py        (from the repository root; or: make bench)

Prints numbers only and never fails on timing: the race, where our time goes step by step, and
both again after glibc's malloc is told to keep freed memory (see ``malloc_tuned``). Page faults
per call show when zlib's state goes back to the kernel between tokens.
"""
from __future__ import annotations

import binascii
import ctypes
import gc
import platform
import random
import resource
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tokens
from bench.common import APP_ID
from bench.common import APP_CERTIFICATE as CERT
from tokens.access_token import AccessToken, sign
from tokens.checks import check_credentials, check_lifetime, check_uid, random_salt
from tokens.identifiers import check_channel
from tokens.roles import check_role

try:
    from agora_token_builder.RtcTokenBuilder import RtcTokenBuilder
except ImportError:  # the bench still shows our numbers without it
    RtcTokenBuilder = None

TOKENS_PER_ROUND = 5_000
ROUNDS = 7
EXPIRE = 3_600


def make_inputs(seed: int = 7) -> list[tuple[str, int]]:
    """Varying channels and uids: every token differs, as in service (zlib cares)."""
    rng = random.Random(seed)
    return [(f"room-{rng.randrange(10**6)}", rng.randrange(1, 2**32)) for _ in range(TOKENS_PER_ROUND)]


def page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def per_token(step, items) -> float:
    """Microseconds per call of ``step(item)`` over ``items``, with the collector off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for item in items:
            step(item)
        return (time.perf_counter_ns() - start) / len(items) / 1000
    finally:
        gc.enable()


def faults_per_call(step, items) -> float:
    before = page_faults()
    for item in items:
        step(item)
    return (page_faults() - before) / len(items)


def ours(item):
    return tokens.build_rtc_token(APP_ID, CERT, item[0], item[1], tokens.Role.PUBLISHER, EXPIRE, EXPIRE)


def theirs(item):
    return RtcTokenBuilder.buildTokenWithUid(APP_ID, CERT, item[0], item[1], 1, int(time.time()) + EXPIRE)


def race(inputs, title: str) -> None:
    """ABAB: ours, theirs, ours, theirs…; each round TOKENS_PER_ROUND tokens."""
    print(title)
    print(f"  {'round':<8}{'ours 007':>12}{'006':>12}   (µs per token)")
    a, b_ = [], []
    faults = page_faults()
    for r in range(1, ROUNDS + 1):
        a.append(per_token(ours, inputs))
        b_.append(per_token(theirs, inputs) if RtcTokenBuilder else float("nan"))
        print(f"  {r:<8}{a[-1]:>12.2f}{b_[-1]:>12.2f}")
    faults = (page_faults() - faults) / (2 * ROUNDS * len(inputs))
    ma, mb = statistics.median(a), statistics.median(b_)
    print(f"  {'median':<8}{ma:>12.2f}{mb:>12.2f}   ours/006 = {ma / mb:.2f}")
    print(f"  minor page faults per token (both sides): {faults:.1f}")


def breakdown(inputs) -> None:
    """Each step of ours on the same inputs, timed alone; median of five passes."""
    salts = [random_salt() for _ in inputs]
    ts = int(time.time())
    privileges = dict.fromkeys((1, 2, 3, 4), EXPIRE)

    def validation(item):
        check_credentials(APP_ID, CERT)
        check_lifetime(EXPIRE, "token lifetime")
        check_lifetime(EXPIRE, "privilege lifetime", required=False)
        check_role(1)
        check_channel(item[0])
        check_uid(item[1])

    def packing(i):
        channel, uid = inputs[i]
        service = tokens.ServiceRtc(channel_name=channel, uid=str(uid), privileges=dict(privileges))
        return AccessToken(APP_ID, ts, EXPIRE, salts[i], [service]).pack_signing_info()

    indices = range(len(inputs))
    infos = [packing(i) for i in indices]
    signed = [sign(CERT, ts, salts[i], infos[i]) for i in indices]
    contents = [b"\x20\x00" + signed[i] + infos[i] for i in indices]
    compressed = [zlib.compress(c) for c in contents]
    steps = {
        "validation": (validation, inputs),
        "salt": (lambda _: random_salt(), inputs),
        "objects + packing": (packing, indices),
        "HMAC x2 (k1 cached)": (lambda i: sign(CERT, ts, salts[i], infos[i]), indices),
        "zlib.compress": (zlib.compress, contents),
        "base64": (lambda c: binascii.b2a_base64(c, newline=False).decode("ascii"), compressed),
    }
    times = {name: statistics.median(per_token(*steps[name]) for _ in range(5)) for name in steps}
    faults = {name: faults_per_call(*steps[name]) for name in steps}
    whole = statistics.median(per_token(ours, inputs) for _ in range(5))
    repeated = [contents[0]] * len(contents)
    same = statistics.median(per_token(zlib.compress, repeated) for _ in range(5))
    same_faults = faults_per_call(zlib.compress, repeated)
    print(f"where our {whole:.2f} µs per token go (each step alone, same inputs, median of 5)")
    for name, t in times.items():
        print(f"  {name:<22}{t:>7.2f}   {faults[name]:>5.1f} page faults")
    total = sum(times.values())
    print(f"  {'sum of steps':<22}{total:>7.2f}   rest (calls between steps, ints to text): {whole - total:.2f}")
    print(f"  zlib.compress of one content, repeated: {same:.2f} µs, {same_faults:.1f} page faults "
          "(branch predictors learn it; real tokens all differ)")
    print(f"  content compressed per token: {statistics.mean(map(len, contents)):.0f} bytes")


def malloc_tuned() -> bool:
    """Ask glibc to keep freed memory: zlib's ~270 KB of state per call otherwise goes back
    to the kernel (brk) and comes back as fresh zeroed pages (page faults) on the next call.
    The same as MALLOC_TRIM_THRESHOLD_ / MALLOC_TOP_PAD_ in the environment; process-wide,
    so it belongs to a deployment, never to the tokens package."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_top_pad = -1, -2
    return bool(libc.mallopt(m_trim_threshold, 8 << 20)) and bool(libc.mallopt(m_top_pad, 1 << 20))


def main() -> None:
    inputs = make_inputs()
    for item in inputs[:200]:  # warm caches and code paths on both sides
        ours(item)
        if RtcTokenBuilder:
            theirs(item)
    print(f"Python {platform.python_version()}, zlib {zlib.ZLIB_RUNTIME_VERSION}, "
          f"{TOKENS_PER_ROUND} tokens per round, varying channel and uid\n")
    if RtcTokenBuilder is None:
        print("(agora-token-builder is not installed: its column is nan)\n")
    race(inputs, "publisher RTC token: tokens.build_rtc_token vs agora-token-builder buildTokenWithUid")
    print()
    breakdown(inputs)
    print()
    if malloc_tuned():
        print("=== again, after mallopt(M_TRIM_THRESHOLD=8 MiB, M_TOP_PAD=1 MiB) in this process ===\n")
        race(inputs, "publisher RTC token, malloc keeping freed memory")
        print()
        breakdown(inputs)
    else:
        print("(not glibc: the mallopt comparison is skipped)")


if __name__ == "__main__":
    main()
