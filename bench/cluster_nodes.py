"""Real ``shoal node start`` processes for the cluster bench, and waiting until balanced.

Owns: starting N nodes on 127.0.0.1 (fixed ports below the ephemeral range, so a killed
node restarts where its peers expect it; temp data dirs), ``kill -9`` and restart with the
same data dir, and polling ``CLUSTER_STATUS`` until every shard is led and none is below its
replication factor. Must not: hold workloads (``workloads.py``) or measure anything.

``tests/helpers/node_proc.py`` does the same for the tests; the bench cannot import from
``tests/`` (it is not installed), so the few lines it needs live here.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import trio

from shoal import wire
from shoal.sdk.connection import ServiceConnection

START_TIMEOUT_S = 60.0
_SERVING = re.compile(r"node serving listen=[\d.]+:(\d+) .*node_id=(\S+)")


class BenchNode:
    """One node process; ``address`` is its ws:// URL, ``name`` its node id once it serves."""

    def __init__(self, data_dir: Path, port: int, args: list[str]) -> None:
        self.data_dir, self.port, self.args = data_dir, port, args
        self.proc: subprocess.Popen[str] | None = None
        self.name = ""
        self.lines: list[str] = []
        self._serving = threading.Event()

    @property
    def address(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, join: str | None = None) -> None:
        """Start the process (joining through ``join``, HOST:PORT, if given); block until it
        logs that it serves."""
        self._serving.clear()
        self.name = ""
        cmd = [sys.executable, "-m", "shoal.cli.main", "node", "start",
               "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
               *self.args, *(["--join", join] if join else [])]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        if not self._serving.wait(START_TIMEOUT_S) or not self.name:
            self.kill()
            raise RuntimeError("node did not start:\n" + "".join(self.lines[-30:]))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)
            m = _SERVING.search(line)
            if m:
                self.name = m.group(2)
                self._serving.set()
        self._serving.set()  # the process ended: start() need not wait any longer

    def kill(self) -> None:
        """``kill -9`` (no shutdown code runs) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the process has used; None off Linux or once dead."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def trouble(self) -> list[str]:
        """The log's error and warning lines, to show when a run went wrong."""
        return [ln for ln in self.lines if any(w in ln for w in ("ERROR", "WARNING", "Traceback"))]


def free_port() -> int:
    """A port free for TCP and UDP below the kernel's ephemeral range: a port from that
    range could be taken by an outgoing connection while a killed node is down."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(500):
        port = random.randrange(max(1024, low - 12000), low)
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


@contextlib.contextmanager
def running_cluster(root: Path, size: int, args: list[str]) -> Iterator[list[BenchNode]]:
    """``size`` nodes; nodes 1.. join through node 0. All are killed on exit."""
    nodes = [BenchNode(root / f"n{i}", free_port(), args) for i in range(size)]
    try:
        nodes[0].start()
        seed = f"127.0.0.1:{nodes[0].port}"
        with ThreadPoolExecutor(max(1, size - 1)) as pool:
            list(pool.map(lambda n: n.start(join=seed), nodes[1:]))
        yield nodes
    finally:
        for n in nodes:
            n.kill()


class Views:
    """One open connection per node, for polling ``CLUSTER_STATUS``."""

    def __init__(self, nodes: list[BenchNode]) -> None:
        self.conns = {n.address: ServiceConnection(n.address, wire.DEFAULT_NAMESPACE)
                      for n in nodes}

    async def status(self, node: BenchNode) -> wire.ClusterStatusResponse:
        return await self.conns[node.address].call(
            wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(), retry_for_s=5.0)

    async def aclose(self) -> None:
        for c in self.conns.values():
            await c.close()


def idle_cpu(nodes: list[BenchNode], seconds: float) -> list[float | None]:
    """Each node's CPU use (fraction of one core) over ``seconds`` with no client load:
    what heartbeats, ticks and gossip cost before any workload."""
    before = [n.cpu_s() for n in nodes]
    t0 = time.monotonic()
    time.sleep(seconds)
    after = [n.cpu_s() for n in nodes]
    dt = time.monotonic() - t0
    return [round((b - a) / dt, 3) if a is not None and b is not None else None
            for a, b in zip(before, after)]


async def routing_counters(nodes: list[BenchNode]) -> list[dict[str, int]]:
    """Each node's ``CLUSTER_STATUS`` routing counters (requests forwarded, retried, ...)."""
    views = Views(nodes)
    try:
        return [(await views.status(n)).routing for n in nodes]
    finally:
        await views.aclose()


async def wait_balanced(nodes: list[BenchNode], num_shards: int,
                        timeout_s: float) -> dict[str, list[int]]:
    """Poll until ``nodes`` lead every shard between them, each leads some, and no shard
    is below its replication factor. Returns the shards each node (by address) leads.

    Raises:
        RuntimeError: not balanced within ``timeout_s`` (the last view is in the message).
    """
    views = Views(nodes)
    led: dict[str, list[int]] = {}
    under = -1
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            led.clear()
            under = 0
            for n in nodes:
                resp = await views.status(n)
                led[n.address] = sorted(resp.shards_led)
                under += len(resp.shards_under_replicated)
            every = sorted(s for shards in led.values() for s in shards)
            if under == 0 and every == list(range(num_shards)) and all(led.values()):
                return dict(led)
            if time.monotonic() > deadline:
                counts = {a: len(s) for a, s in led.items()}
                unled = sorted(set(range(num_shards)) - set(every))
                raise RuntimeError(f"not balanced within {timeout_s}s: shards led {counts}, "
                                   f"{under} under-replicated, {len(set(every))} led in all; "
                                   f"no leader for {len(unled)} (first {unled[:10]})")
            await trio.sleep(0.1)
    finally:
        await views.aclose()
