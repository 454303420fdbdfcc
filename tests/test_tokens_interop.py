"""Our tokens against Agora's own implementation (npm ``agora-token``, pinned in tests/interop).

A few hundred random inputs (a fixed seed) across every builder go to one node process
(tests/interop/agora.js), which builds each token twice: with AccessToken2 and the service
classes as the builder does (``mirror``), and with Agora's builder itself, its issue time and
salt pinned (``builder``). Agora's parser reads and verifies ours; ours reads and verifies theirs;
and every one of our token strings must be byte-identical to Agora's.

The compressed bytes depend on the zlib the runtime links, not only on Agora's code. Node's
official builds (and nodesource's packages) bundle Chromium's zlib fork, which finds fewer
matches near the end of short inputs than stock zlib, so for most tokens it writes a different
(equally valid) deflate stream than this Python's zlib. Debian's own nodejs links the system
zlib. So the ``node`` fixture first asks the machine's node to deflate every case's content
(tests/interop/zlib-probe.js) and compares with Python's ``zlib.compress``; if they differ, it
runs agora.js with Debian's nodejs instead: ``apt-get download``-ed and extracted (not installed)
into tests/interop/.debian-node, once, beside the machine's node (see ``_debian_node``).
``TOKENS_INTEROP_NODE`` names a node to try first.

Known difference, kept out of the random inputs and pinned in a test of its own: Agora's
ServiceApaas writes room role 0 as -1 (``role || -1``); we write the role given.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

import tokens
from tokens import Role

pytestmark = pytest.mark.integration

INTEROP = Path(__file__).parent / "interop"
AGORA_TOKEN_VERSION = json.loads((INTEROP / "package.json").read_text())["dependencies"]["agora-token"]
APP_ID = "970CA35de60c44645bbae8a215061b33"
CERT = "5CFd2fd1755d40ecb72977518be15d3b"
WRONG_CERT = "5CFd2fd1755d40ecb72977518be15d30"
SEED = 20_07
CASES_PER_KIND = 26
CHANNEL_ALPHABET = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    " !#$%&()+-:;<=.>?@[]^_{}|~,")
ACCOUNT_EXTRA = "é中😀ß"  # 2-, 3- and 4-byte UTF-8 in accounts and user ids

# Debian's nodejs, extracted. Its libnode reads a few bundled JS files (acorn, undici,
# cjs-module-lexer) at every start from absolute paths compiled in under /usr/share/nodejs/,
# where only Debian's node-* packages put them. The extracted copy of libnode reads them from
# .debian-node/js/ instead, relative to its working directory (always INTEROP): the path is
# patched in place, so the replacement has the same length.
DEBIAN_NODE = INTEROP / ".debian-node"
SHARED_JS, SHARED_JS_HERE = b"/usr/share/nodejs/", b"./.debian-node/js/"
assert len(SHARED_JS) == len(SHARED_JS_HERE) and SHARED_JS_HERE.decode() == f"./{DEBIAN_NODE.name}/js/"
APT_TIMEOUT = 300


def _run(cmd: list[str], timeout: float = APT_TIMEOUT, **kw) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd)} still running after {timeout}s")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def _installed_version() -> str | None:
    manifest = INTEROP / "node_modules" / "agora-token" / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@dataclass(frozen=True)
class Node:
    """A node binary, and the environment it runs in (None: ours)."""

    path: str
    env: dict[str, str] | None = None

    def run(self, script: str, stdin: str, timeout: float) -> subprocess.CompletedProcess:
        """``node script`` in tests/interop, ``stdin`` as its input."""
        return subprocess.run([self.path, script], cwd=INTEROP, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Probe:
    """What a node said of itself, and how its zlib compares with Python's."""

    node: Node
    version: str
    zlib: str
    differ: int  # of the buffers probed, how many this node deflates unlike Python's zlib
    of: int

    def __str__(self) -> str:
        return (f"node {self.version} at {self.node.path} (zlib {self.zlib}) deflates {self.differ} of "
                f"{self.of} token contents unlike this Python's zlib {zlib.ZLIB_RUNTIME_VERSION}")


def probe(node: Node) -> Probe:
    """How ``node``'s zlib compresses the contents of every random case, against Python's zlib."""
    contents = [_content(case["token"]) for case in _cases()]
    try:
        done = node.run("zlib-probe.js", json.dumps([base64.b64encode(c).decode() for c in contents]), 60)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"{node.path} tests/interop/zlib-probe.js: {e}")
    if done.returncode != 0:
        pytest.fail(f"{node.path} tests/interop/zlib-probe.js exited {done.returncode}:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout)
    differ = sum(base64.b64decode(theirs) != zlib.compress(content)
                 for theirs, content in zip(out["deflated"], contents, strict=True))
    return Probe(node, out["version"], out["zlib"], differ, len(contents))


@pytest.fixture(scope="module")
def node() -> Probe:
    """A node whose zlib deflates as this Python's does, with agora-token installed from the lock
    file: the machine's node (installed if missing) when it qualifies, else Debian's, extracted."""
    # One installer at a time: several test runs may start on a fresh machine together.
    with open(Path(tempfile.gettempdir()) / "tokens-interop-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shutil.which("node") and shutil.which("npm")):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            _run(["apt-get", "update"], env=env)
            _run(["apt-get", "install", "-y", "nodejs", "npm"], env=env)
        if _installed_version() != AGORA_TOKEN_VERSION:  # agora-token is plain JS: any node's npm will do
            _run(["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP)
        tried = []
        for path in filter(None, (os.environ.get("TOKENS_INTEROP_NODE"), shutil.which("node"))):
            tried.append(probe(Node(path)))
            if not tried[-1].differ:
                break
        else:
            tried.append(probe(_debian_node(tried)))
    assert _installed_version() == AGORA_TOKEN_VERSION
    if tried[-1].differ:
        pytest.fail("no node here deflates like this Python's zlib, so token strings cannot be compared "
                    "byte for byte: " + "; ".join(map(str, tried)))
    return tried[-1]


_APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def _apt(args: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``apt-get``/``apt-cache`` ``args``; if that fails, ``apt-get update`` (stale lists) and once more."""
    for attempt in range(2):
        if attempt:
            _apt_update()
        try:
            done = subprocess.run(args, cwd=cwd, env=_APT_ENV, capture_output=True, text=True, timeout=APT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(args)} still running after {APT_TIMEOUT}s")
        if done.returncode == 0:
            break
    return done


def _apt_update() -> None:
    _run(["apt-get", "update", "-q"], env=_APT_ENV)


def _debian_nodejs_version() -> str:
    """The newest nodejs version Debian's archive offers here (not nodesource's)."""
    for attempt in range(2):
        if attempt:
            _apt_update()
        done = _apt(["apt-cache", "madison", "nodejs"])
        versions = [v for v in (line.split("|")[1].strip() for line in done.stdout.splitlines() if line.count("|") >= 2)
                    if "dfsg" in v and "nodesource" not in v]
        if versions:
            return versions[0]  # madison lists the newest first
    pytest.fail("apt-cache madison nodejs lists no Debian nodejs (a +dfsg version) even after apt-get update:\n"
                f"{done.stdout}{done.stderr}")


def _depends(package: str, version: str) -> list[str]:
    """The package names ``package`` ``version`` depends on (first of each alternative)."""
    done = _apt(["apt-cache", "show", f"{package}={version}"])
    fields = done.stdout.split("\n\n")[0]
    depends = re.search(r"^Depends: (.*)$", fields, re.M)
    if done.returncode != 0 or not depends:
        pytest.fail(f"apt-cache show {package}={version}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return [re.split(r"[\s(:]", alternatives.split("|")[0].strip())[0] for alternatives in depends[1].split(",")]


def _is_installed(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and done.stdout.endswith(" installed")


def _extracted_node() -> Node:
    """The node in DEBIAN_NODE, with its libraries (and the ones extracted beside it) first."""
    libs = sorted({str(p.parent) for p in (DEBIAN_NODE / "root").rglob("*.so*")})
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(libs + [os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)}
    return Node(str(DEBIAN_NODE / "root" / "usr" / "bin" / "node"), env)


def _debian_node(tried: list[Probe]) -> Node:
    """Debian's nodejs, from DEBIAN_NODE; downloaded and extracted there first if missing.

    Nothing is installed: ``apt-get download`` fetches nodejs, its libnode, the libraries libnode
    needs that this machine lacks and the node-* packages with the JS it loads at start, and
    ``dpkg-deb -x`` unpacks them; the machine's own node (nodesource's) stays as it is."""
    stamp = DEBIAN_NODE / "ready"  # node's version, once it has run
    if stamp.exists() and _version(_extracted_node())[0] == stamp.read_text().strip():
        return _extracted_node()
    why = "; ".join(map(str, tried))
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.fail(f"{why}, and without apt-get and dpkg-deb Debian's nodejs (which links the system zlib) "
                    "cannot be fetched: set TOKENS_INTEROP_NODE to a node built against stock zlib")
    version = _debian_nodejs_version()
    libnode = next((p for p in _depends("nodejs", version) if p.startswith("libnode")), None)
    if libnode is None:
        pytest.fail(f"Debian's nodejs {version} depends on no libnode package")
    # Libraries libnode links that are missing here; its node-* dependencies (JS it reads at
    # start) are always fetched, since the patched libnode reads them from DEBIAN_NODE.
    extra = [p for p in _depends(libnode, version) if p.startswith("node-") or not _is_installed(p)]
    packages = [f"nodejs={version}", f"{libnode}={version}", *extra]

    shutil.rmtree(DEBIAN_NODE, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=".debian-node.", dir=INTEROP))
    build.chmod(0o755)
    try:
        (build / "debs").mkdir()
        done = _apt(["apt-get", "download", *packages], cwd=build / "debs")
        if done.returncode != 0:
            pytest.fail(f"{why}; fetching Debian's nodejs failed: apt-get download {' '.join(packages)} "
                        f"exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        for deb in sorted((build / "debs").glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(build / "root")], timeout=120)
        shutil.rmtree(build / "debs")
        for so in (build / "root").rglob("libnode.so.*"):
            if so.is_file() and not so.is_symlink():
                _patch_shared_js(so, build)
        (build / "js").symlink_to(Path("root") / SHARED_JS.decode().strip("/"))
        build.rename(DEBIAN_NODE)
    finally:
        shutil.rmtree(build, ignore_errors=True)

    node = _extracted_node()
    ldd = _run(["ldd", node.path], env=node.env, timeout=30)
    if "not found" in ldd.stdout:
        pytest.fail(f"Debian's nodejs {version}, extracted in {DEBIAN_NODE}, misses libraries:\n{ldd.stdout}")
    ran, trouble = _version(node)
    if ran is None:
        pytest.fail(f"Debian's nodejs {version}, extracted in {DEBIAN_NODE}, does not start: {trouble}")
    stamp.write_text(ran + "\n")
    return node


def _version(node: Node) -> tuple[str | None, str]:
    """``process.version`` of ``node`` (None if it does not run), and what went wrong."""
    try:
        done = subprocess.run([node.path, "-p", "process.version"], cwd=INTEROP, env=node.env,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if done.returncode != 0:
        return None, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout.strip(), ""


def _patch_shared_js(so: Path, build: Path) -> None:
    """Point ``so``'s compiled-in /usr/share/nodejs/… file names at SHARED_JS_HERE (see there)."""
    data = so.read_bytes()
    names = set(re.findall(rb"(?<=\0)" + re.escape(SHARED_JS) + rb"[^\0\"]+\.js(?=\0)", data))
    if not names:
        pytest.fail(f"{so.name}: no {SHARED_JS.decode()}*.js file names to redirect; Debian's nodejs has changed")
    missing = [n.decode() for n in names if not (build / "root" / n.decode().lstrip("/")).is_file()]
    if missing:
        pytest.fail(f"{so.name} loads {missing}, which no downloaded package provides")
    for name in names:
        data = data.replace(b"\0" + name + b"\0", b"\0" + SHARED_JS_HERE + name[len(SHARED_JS):] + b"\0")
    so.write_bytes(data)


def agora(node: Probe, cases: list[dict]) -> list[dict]:
    """Run a batch of cases through tests/interop/agora.js (one node process): one result per case."""
    done = node.node.run("agora.js", json.dumps(cases), 300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["zlib"] == node.zlib
    assert len(out["results"]) == len(cases)
    for case, result in zip(cases, out["results"]):
        assert "error" not in result, f"agora.js failed on {_describe(case)}: {result['error']}"
    return out["results"]


class Inputs:
    """Random inputs in Agora's allowed ranges, edges included in rotation."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def channel(self, i: int) -> str:
        r = self.rng
        size = (1, 63, r.randint(1, 63), r.randint(1, 63))[i % 4]
        return "".join(r.choice(CHANNEL_ALPHABET) for _ in range(size))

    def account(self, max_bytes: int = 255, budget: int | None = None) -> str:
        r = self.rng
        budget = budget or r.choice((1, max_bytes, r.randint(1, 40), r.randint(1, max_bytes)))
        out, used = [], 0
        while True:
            c = r.choice(ACCOUNT_EXTRA) if r.random() < 0.1 else chr(r.randint(0x21, 0x7E))
            size = len(c.encode())
            if used + size > budget:
                return "".join(out) or "a"
            out.append(c)
            used += size

    def uid(self, i: int) -> int | str:
        r = self.rng
        if i % 5 == 4:
            return self.account(budget=255 if i % 10 == 4 else None)
        return (0, 2**32 - 1, r.randint(1, 2**32 - 2), r.randint(1, 99_999))[i % 5]

    def lifetime(self, i: int, *, zero: bool = False) -> int:
        r = self.rng
        return (1 - zero, 86_400, r.randint(1, 86_400), r.randint(1, 3_600))[(i // 3) % 4]

    def header(self, i: int) -> dict:
        r = self.rng
        return {
            "issue_ts": (1, 2**32 - 1, r.randint(1_600_000_000, 1_900_000_000), r.randint(1, 2**32 - 1))[i % 4],
            "salt": (1, 99_999_999, r.randint(1, 99_999_999))[(i // 4) % 3],
        }

    def rtc(self, i: int) -> dict:
        return {"channel": self.channel(i), "uid": self.uid(i), "role": self.rng.choice(list(Role)),
                "expire": self.lifetime(i), "privilege_expire": self.lifetime(i + 1, zero=True)}

    def permissions(self) -> dict[int, dict[int, list[str]]]:
        r = self.rng
        return {
            resource: {permission: [self.account(64) for _ in range(r.randint(0, 3))]
                       for permission in r.sample(range(2), r.randint(1, 2))}
            for resource in r.sample(range(5), r.randint(0, 5))
        }


def _rtc_rtm(inputs: Inputs, i: int) -> dict:
    a = inputs.rtc(i)
    # uid 0 names no RTM user: give one; otherwise sometimes let it default to the uid.
    a["rtm_user"] = inputs.account() if a["uid"] == 0 or i % 2 else None
    a["rtm_expire"] = inputs.lifetime(i + 2, zero=True) if i % 3 else None
    return a


def _rtc_rtm_node(a: dict) -> dict:
    e = a["privilege_expire"]
    rtm_user = a["rtm_user"] if a["rtm_user"] is not None else tokens.services.uid_text(a["uid"])
    return {"channel": a["channel"], "account": a["uid"], "role": int(a["role"]), "expire": a["expire"],
            "join": e, "audio": e, "video": e, "data": e, "rtm_user": rtm_user,
            "rtm_expire": a["expire"] if a["rtm_expire"] is None else a["rtm_expire"]}


def _rtc_rtm_ours(builder):
    return lambda a, h: builder(APP_ID, CERT, a["channel"], a["uid"], a["role"], a["expire"],
                                a["privilege_expire"], rtm_user=a["rtm_user"], rtm_expire=a["rtm_expire"], **h)


def _rtc_privileges(inputs: Inputs, i: int) -> dict:
    a = inputs.rtc(i)
    a.update(zip(("join", "audio", "video", "data"), (inputs.lifetime(i + k, zero=True) for k in range(4))))
    return a


# kind → (random args, our build, the args agora.js takes)
KINDS = {
    "rtc": (
        lambda s, i: s.rtc(i),
        lambda a, h: tokens.build_rtc_token(APP_ID, CERT, a["channel"], a["uid"], a["role"], a["expire"],
                                            a["privilege_expire"], **h),
        lambda a: {"channel": a["channel"], "account": a["uid"], "role": int(a["role"]),
                   "expire": a["expire"], "privilege_expire": a["privilege_expire"]},
    ),
    "rtc_privileges": (
        _rtc_privileges,
        lambda a, h: tokens.build_rtc_token_with_privileges(
            APP_ID, CERT, a["channel"], a["uid"], a["expire"], a["join"], a["audio"], a["video"], a["data"], **h),
        lambda a: {"channel": a["channel"], "account": a["uid"], "expire": a["expire"],
                   **{k: a[k] for k in ("join", "audio", "video", "data")}},
    ),
    "rtc_rtm": (_rtc_rtm, _rtc_rtm_ours(tokens.build_rtc_rtm_token), _rtc_rtm_node),
    "convoai": (_rtc_rtm, _rtc_rtm_ours(tokens.build_conversational_ai_token), _rtc_rtm_node),
    "stt": (_rtc_rtm, _rtc_rtm_ours(tokens.build_speech_to_text_token), _rtc_rtm_node),
    "rtm": (
        lambda s, i: {"user": s.account(), "expire": s.lifetime(i)},
        lambda a, h: tokens.build_rtm_token(APP_ID, CERT, a["user"], a["expire"], **h),
        dict,
    ),
    "rtm2": (
        lambda s, i: {"user": s.account(), "expire": s.lifetime(i), "permissions": s.permissions()},
        lambda a, h: tokens.build_rtm2_token(APP_ID, CERT, a["user"], a["expire"], a["permissions"], **h),
        lambda a: {"user": a["user"], "expire": a["expire"],
                   "permissions": [[r, p, names] for r, ps in a["permissions"].items() for p, names in ps.items()]},
    ),
    "chat_user": (
        lambda s, i: {"user": s.account(), "expire": s.lifetime(i)},
        lambda a, h: tokens.build_chat_user_token(APP_ID, CERT, a["user"], a["expire"], **h),
        dict,
    ),
    "chat_app": (
        lambda s, i: {"expire": s.lifetime(i)},
        lambda a, h: tokens.build_chat_app_token(APP_ID, CERT, a["expire"], **h),
        dict,
    ),
    "fpa": (
        lambda s, i: {},
        lambda a, h: tokens.build_fpa_token(APP_ID, CERT, **h),
        dict,
    ),
    "apaas_room_user": (
        lambda s, i: {"room": s.account(), "user": s.account(), "expire": s.lifetime(i),
                      # not 0: Agora's ServiceApaas writes role 0 as -1 (test_apaas_role_zero)
                      "role": s.rng.choice((-32768, -1, 1, 2, 32767, s.rng.randint(1, 32767)))},
        lambda a, h: tokens.build_apaas_room_user_token(APP_ID, CERT, a["room"], a["user"], a["role"],
                                                        a["expire"], **h),
        dict,
    ),
    "apaas_user": (
        lambda s, i: {"user": s.account(), "expire": s.lifetime(i)},
        lambda a, h: tokens.build_apaas_user_token(APP_ID, CERT, a["user"], a["expire"], **h),
        dict,
    ),
    "apaas_app": (
        lambda s, i: {"expire": s.lifetime(i)},
        lambda a, h: tokens.build_apaas_app_token(APP_ID, CERT, a["expire"], **h),
        dict,
    ),
}


def _case(kind: str, node_args: dict, header: dict, ours: str) -> dict:
    return {"kind": kind, "args": node_args, "app_id": APP_ID, "app_certificate": CERT,
            "wrong_certificate": WRONG_CERT, "token": ours, **header}


@functools.cache
def _cases() -> tuple[dict, ...]:
    """Every random case (a fixed seed), with our token for it."""
    inputs = Inputs(random.Random(SEED))
    cases = []
    for kind, (make_args, build, to_node) in KINDS.items():
        for i in range(CASES_PER_KIND):
            args, header = make_args(inputs, i), inputs.header(i)
            cases.append(_case(kind, to_node(args), header, build(args, header)))
    return tuple(cases)


class Batch:
    """Every random case, our token for it, and what agora.js made of it."""

    def __init__(self, node: Probe, rows: list[tuple[dict, str, dict]]):
        self.node = node
        self.rows = rows

    def of(self, kind: str) -> list[tuple[dict, str, dict]]:
        return [row for row in self.rows if row[0]["kind"] == kind]


@pytest.fixture(scope="module")
def batch(node) -> Batch:
    """All random cases, run through one node process."""
    cases = list(_cases())
    results = agora(node, cases)
    return Batch(node, [(case, case["token"], result) for case, result in zip(cases, results)])


def _describe(case: dict) -> str:
    return json.dumps({k: case.get(k) for k in ("kind", "args", "issue_ts", "salt")}, ensure_ascii=False)


def _content(token: str) -> bytes:
    """What the zlib stream carries: bytes(signature) + signing_info."""
    return zlib.decompress(base64.b64decode(token[3:]))


@pytest.mark.parametrize("kind", KINDS)
def test_same_content_as_agora(batch, kind):
    for case, ours, result in batch.of(kind):
        assert result["mirror"] == result["builder"], f"agora.js mirror drifted from Agora's builder: {_describe(case)}"
        assert _content(ours) == _content(result["builder"]), f"differs from Agora: {_describe(case)}"


@pytest.mark.parametrize("kind", KINDS)
def test_byte_identical_to_agora(batch, kind):
    for case, ours, result in batch.of(kind):
        assert ours == result["builder"], f"differs from Agora ({batch.node}): {_describe(case)}"


def test_node_zlib_is_stock_zlib(batch):
    """What makes whole strings comparable: node's zlib writes our bytes for our content."""
    differ = [case for case, ours, result in batch.rows if result["reencoded"] != ours]
    assert not differ, (f"node {batch.node.version} (zlib {batch.node.zlib}) deflates {len(differ)} of "
                        f"{len(batch.rows)} token contents unlike this Python's zlib {zlib.ZLIB_RUNTIME_VERSION}, "
                        f"e.g. {_describe(differ[0])}")


def _as_agora_reports(token: tokens.AccessToken) -> dict:
    """Our parse in the shape agora.js reports, for comparison."""
    def fields(service) -> dict:
        out = dict(service.fields_dict())
        if isinstance(service, tokens.ServiceApaas):
            out["role"] = service.role & 0xFFFF  # Agora's getInt16 reads the role unsigned
        if isinstance(service, tokens.ServiceRtm2):
            out["permissions"] = {str(r): {str(p): names for p, names in ps.items()}
                                  for r, ps in service.permissions.items()}
        return out

    return {"app_id": token.app_id, "issue_ts": token.issue_ts, "expire": token.expire, "salt": token.salt,
            "services": [{"type": s.TYPE, "privileges": {str(k): v for k, v in s.privileges.items()},
                          "fields": fields(s)} for s in token.services]}


@pytest.mark.parametrize("kind", KINDS)
def test_agora_reads_and_verifies_ours(batch, kind):
    for case, ours, result in batch.of(kind):
        parsed = result["parsed"]
        assert parsed["ok"] and parsed["verified"], f"Agora refuses ours: {_describe(case)}"
        assert parsed["verified_with_wrong_certificate"] is False
        reported = {k: parsed[k] for k in ("app_id", "issue_ts", "expire", "salt", "services")}
        assert reported == _as_agora_reports(tokens.parse_token(ours)), _describe(case)


@pytest.mark.parametrize("kind", KINDS)
def test_we_read_and_verify_theirs(batch, kind):
    for case, _, result in batch.of(kind):
        theirs = tokens.parse_token(result["builder"])
        assert theirs.verify(CERT) and not theirs.verify(WRONG_CERT), _describe(case)
        assert (theirs.app_id, theirs.issue_ts, theirs.salt) == (APP_ID, case["issue_ts"], case["salt"])


def test_random_inputs_cover_the_edges(batch):
    rtc = [case["args"] for case, _, _ in batch.of("rtc")]
    assert {0, 2**32 - 1} <= {a["account"] for a in rtc}
    assert any(isinstance(a["account"], str) and len(a["account"].encode()) == 255 for a in rtc)
    assert {1, 63} <= {len(a["channel"]) for a in rtc}
    assert {1, 86_400} <= {a["expire"] for a in rtc}
    assert {1, 2} <= {a["role"] for a in rtc}
    assert len(batch.rows) >= 300


def test_apaas_role_zero_is_the_one_known_difference(node):
    """Agora's ServiceApaas writes ``role || -1``: role 0 becomes -1. We write 0 as given."""
    header = {"issue_ts": 1111111, "salt": 1}
    args = {"room": "room", "user": "user", "role": 0, "expire": 600}
    ours = tokens.build_apaas_room_user_token(APP_ID, CERT, "room", "user", 0, 600, **header)
    (result,) = agora(node, [_case("apaas_room_user", args, header, ours)])
    theirs = tokens.parse_token(result["builder"])
    assert _content(ours) != _content(result["builder"])
    assert [s.role for s in theirs.services if isinstance(s, tokens.ServiceApaas)] == [-1]
    assert [s.role for s in tokens.parse_token(ours).services if isinstance(s, tokens.ServiceApaas)] == [0]
    assert result["parsed"]["verified"] and theirs.verify(CERT)
    # with role -1 given explicitly the two agree again
    minus_one = tokens.build_apaas_room_user_token(APP_ID, CERT, "room", "user", -1, 600, **header)
    assert _content(minus_one) == _content(result["builder"])


def test_chat_user_id_of_a_room_user_is_md5_of_the_user(batch):
    for case, ours, _ in batch.of("apaas_room_user"):
        chat = next(s for s in tokens.parse_token(ours).services if isinstance(s, tokens.ServiceChat))
        assert chat.user_id == hashlib.md5(case["args"]["user"].encode()).hexdigest()
