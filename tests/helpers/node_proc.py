"""Real ``shoal node start`` processes for integration tests.

Starts a node on 127.0.0.1 with an ephemeral port and a temp data dir, reads the bound port
from its log, and kills it (``kill -9`` or SIGTERM) on request or at teardown.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import trio

_SERVING = re.compile(r"node serving listen=([\d.]+):(\d+)")


class NodeProcess:
    """A node process; ``address`` is its ws:// URL once started."""

    def __init__(self, data_dir: Path, *, num_shards: int = 16, port: int = 0,
                 extra: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.listen_port = port
        self.num_shards = num_shards
        self.extra = extra or []
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self.log_lines: list[str] = []
        self.serving = False  # this run has logged that it serves
        self._serving = threading.Event()

    @property
    def address(self) -> str:
        assert self.port is not None
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the process and block until it logs that it serves (or fail)."""
        old_pump = getattr(self, "_pump_thread", None)
        if old_pump is not None:
            old_pump.join(5)  # the last run's reader must not report on this one
        self._serving.clear()
        self.serving = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.cli.main", "node", "start",
             "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.listen_port}",
             "--num-shards", str(self.num_shards), *self.extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._pump_thread = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self._pump_thread.start()
        if not self._serving.wait(timeout_s) or not self.serving:
            self.kill()
            raise RuntimeError("node did not start:\n" + "".join(self.log_lines[-50:]))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log_lines.append(line)
            m = _SERVING.search(line)
            if m:
                self.port = int(m.group(2))
                self.serving = True
                self._serving.set()
        self._serving.set()  # the process ended: start() need not wait any longer

    async def start_async(self, timeout_s: float = 30.0) -> None:
        await trio.to_thread.run_sync(self.start, timeout_s)

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self._pump_thread.join(5)  # the log's last lines
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def free_port() -> int:
    """A port nothing uses right now, for TCP and UDP (a node needs both), for a node that
    must restart on the same port or be named by ``--join`` before it starts.

    It lies below the kernel's ephemeral range: a port from that range could be taken by
    any outgoing connection (a client, a peer link) while a killed node is down, and the
    restart would then fail with "address in use".
    """
    import random
    import socket

    low = _ephemeral_low()
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


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


async def wait_until(pred, *, timeout_s: float = 10.0, interval_s: float = 0.02) -> None:
    """Poll ``pred`` (sync or async) until true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        val = pred()
        if hasattr(val, "__await__"):
            val = await val
        if val:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await trio.sleep(interval_s)
