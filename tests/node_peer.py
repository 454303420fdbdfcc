"""A node to run Agora's own ``agora-token`` (pinned in tests/interop) beside our tokens, for
tests/test_tokens_interop.py: found, installed or fetched here, with agora-token installed from
the lock file.

Whole token strings compare byte for byte only if node deflates as this Python's zlib does: the
compressed bytes depend on the zlib the runtime links, not only on Agora's code. Node's official
builds (and nodesource's packages) bundle Chromium's zlib fork, which finds fewer matches near
the end of short inputs than stock zlib, so for most tokens it writes a different (equally valid)
deflate stream than this Python's zlib. Debian's own nodejs links the system zlib. So
``stock_zlib_node`` first asks the machine's node (installed if missing) to deflate the given
contents (tests/interop/zlib-probe.js) and compares with Python's ``zlib.compress``; if they
differ, it takes Debian's nodejs instead: ``apt-get download``-ed and extracted (not installed)
into tests/interop/.debian-node, once, beside the machine's node (see ``_debian_node``).
``TOKENS_INTEROP_NODE`` names a node to try first.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.procs import ensure_installed

INTEROP = Path(__file__).parent / "interop"
AGORA_TOKEN_VERSION = json.loads((INTEROP / "package.json").read_text())["dependencies"]["agora-token"]

# Debian's nodejs, extracted. Its libnode reads a few bundled JS files (acorn, undici,
# cjs-module-lexer) at every start from absolute paths compiled in under /usr/share/nodejs/,
# where only Debian's node-* packages put them. The extracted copy of libnode reads them from
# .debian-node/js/ instead, relative to its working directory (always INTEROP): the path is
# patched in place, so the replacement has the same length.
DEBIAN_NODE = INTEROP / ".debian-node"
SHARED_JS, SHARED_JS_HERE = b"/usr/share/nodejs/", b"./.debian-node/js/"
assert len(SHARED_JS) == len(SHARED_JS_HERE) and SHARED_JS_HERE.decode() == f"./{DEBIAN_NODE.name}/js/"
APT_TIMEOUT = 300


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


def probe(node: Node, contents: Sequence[bytes]) -> Probe:
    """How ``node``'s zlib compresses ``contents``, against Python's zlib."""
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


def stock_zlib_node(contents: Sequence[bytes]) -> Probe:
    """A node that deflates every one of ``contents`` as this Python's zlib does, with agora-token
    installed from the lock file: the machine's node (installed if missing) when it qualifies,
    else Debian's, extracted. Fails the test if there is none."""
    # One installer at a time: several test runs may start on a fresh machine together.
    with open(Path(tempfile.gettempdir()) / "tokens-interop-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        machine_node = ensure_installed("node", "nodejs")
        npm = ensure_installed("npm", "npm")
        if _installed_version() != AGORA_TOKEN_VERSION:  # agora-token is plain JS: any node's npm will do
            _run([npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP)
        tried = []
        for path in filter(None, (os.environ.get("TOKENS_INTEROP_NODE"), machine_node)):
            tried.append(probe(Node(path), contents))
            if not tried[-1].differ:
                break
        else:
            tried.append(probe(_debian_node(tried), contents))
    assert _installed_version() == AGORA_TOKEN_VERSION
    if tried[-1].differ:
        pytest.fail("no node here deflates like this Python's zlib, so token strings cannot be compared "
                    "byte for byte: " + "; ".join(map(str, tried)))
    return tried[-1]


def _installed_version() -> str | None:
    manifest = INTEROP / "node_modules" / "agora-token" / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


def _run(cmd: list[str], timeout: float = APT_TIMEOUT, **kw) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd)} still running after {timeout}s")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


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
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([*libs, os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)}
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
