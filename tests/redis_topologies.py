"""Redis the way it runs in production, on free loopback ports: a three-master Cluster, and a
master with one replica watched by a Sentinel. Each is started as an operator would (Debian's
redis-server and redis-cli; Sentinel is ``redis-server --sentinel``) and killed afterwards,
every process in its own process group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import redis

from tools.procs import ensure_installed, free_port, wait_for_port


class RedisNode:
    """One redis-server (or Sentinel) on a loopback port, with no persistence."""

    def __init__(self, workdir: Path, *config: str, sentinel_conf: Path | None = None):
        self.binary = ensure_installed("redis-server", "redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.config = config
        self.sentinel_conf = sentinel_conf  # Sentinel rewrites its own file: it must be writable
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisNode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [self.binary]
        if self.sentinel_conf is not None:
            argv += [str(self.sentinel_conf), "--sentinel"]
        argv += ["--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log"), *self.config]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_for_port(self.port, proc=self.proc)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def kill(self) -> None:
        """SIGKILL to the whole group (a fork saving or syncing to a replica too): a crash."""
        if self.proc is not None and self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, chars: int = 2000) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_until(check, what: str, timeout: float = 20.0, interval: float = 0.1):
    """``check()``'s first true value within ``timeout`` seconds; errors count as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout}s")
        time.sleep(interval)


class Cluster:
    """Three masters sharing the 16384 slots, no replicas."""

    def __init__(self, nodes: list[RedisNode]):
        self.nodes = nodes
        self.uri = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes)

    def dbsizes(self) -> dict[int, int]:
        """Keys held by each node, by port."""
        return {n.port: n.client().dbsize() for n in self.nodes}


@contextmanager
def redis_cluster(workdir: Path, masters: int = 3) -> Iterator[Cluster]:
    redis_cli = ensure_installed("redis-cli", "redis-tools")
    with ExitStack() as stack:
        nodes = []
        for i in range(masters):
            # The bus port is the client port + 10000 unless set; that may be taken or past 65535.
            node = RedisNode(workdir / f"node{i}", "--cluster-enabled", "yes", "--cluster-config-file",
                             "nodes.conf", "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000")
            stack.callback(node.kill)
            nodes.append(node.start())
        created = subprocess.run([redis_cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
                                  "--cluster-replicas", "0", "--cluster-yes"],
                                 capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        for node in nodes:  # every node must have learnt every other's slots
            wait_until(lambda node=node: node.client().cluster("INFO")["cluster_state"] == "ok",
                       f"cluster_state is not ok on node {node.port}")
        yield Cluster(nodes)


class SentinelSetup:
    """A master, its replica, and one Sentinel that fails over to the replica (quorum 1)."""

    def __init__(self, master: RedisNode, replica: RedisNode, sentinel: RedisNode, service: str):
        self.master, self.replica, self.sentinel, self.service = master, replica, sentinel, service
        self.uri = f"redis+sentinel://127.0.0.1:{sentinel.port}/{service}"

    def master_port(self) -> int:
        """The port Sentinel currently names as the master."""
        _host, port = self.sentinel.client().sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def known_replicas(self) -> list[dict]:
        return self.sentinel.client().sentinel_slaves(self.service)


SENTINEL_CONF = """\
sentinel monitor {service} 127.0.0.1 {master} 1
sentinel down-after-milliseconds {service} 1000
sentinel failover-timeout {service} 3000
sentinel parallel-syncs {service} 1
"""


@contextmanager
def redis_sentinel(workdir: Path, service: str = "mymaster") -> Iterator[SentinelSetup]:
    with ExitStack() as stack:
        # The replica syncs at once rather than after the default 5 s wait for others to join.
        master = RedisNode(workdir / "master", "--repl-diskless-sync-delay", "0")
        stack.callback(master.kill)
        master.start()
        replica = RedisNode(workdir / "replica", "--replicaof", "127.0.0.1", str(master.port))
        stack.callback(replica.kill)
        replica.start()
        wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up",
                   "the replica never synced with the master")

        conf = workdir / "sentinel" / "sentinel.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(SENTINEL_CONF.format(service=service, master=master.port))
        sentinel = RedisNode(conf.parent, sentinel_conf=conf)
        stack.callback(sentinel.kill)
        sentinel.start()
        setup = SentinelSetup(master, replica, sentinel, service)
        # A failover needs a replica Sentinel has seen (through the master's INFO) and found healthy.
        wait_until(lambda: any(r["port"] == replica.port and r.get("is_slave") and not r.get("is_sdown")
                               and r.get("master-link-status") == "ok" for r in setup.known_replicas()),
                   "Sentinel never saw the replica")
        yield setup
