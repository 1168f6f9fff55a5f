"""The cluster bench runs end to end with tiny sizes, so its figures come from working code.

It asserts the JSON's shape and that the figures are numbers, never a duration bound
(durations are the bench's to report, on a quiet machine).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(300)

TINY = {"w1_runs": 2, "w2_workflows": 4, "w2_in_flight": 2, "w3_timers": 2,
        "w4_signals": 5, "w4_in_flight": 2}
WORKLOAD_FIGURES = {"W1": "p50_ms", "W2": "workflows_per_s", "W2_no_cache": "workflows_per_s",
                    "W3": "p99_lateness_ms", "W4": "signals_per_s"}


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_cluster_bench_reports_every_workload_and_each_kill() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shoal.bench.cluster_bench", "--sizes", json.dumps(TINY),
         "--num-shards", "8", "--kills", "2"],
        capture_output=True, text=True, timeout=280, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)

    assert result["sizes"] == TINY and result["num_shards"] == 8
    assert all(_number(x) for x in result["machine"]["loadavg_start"])
    for side in ("shoal_3node_r3", "shoal_1node_r1"):
        assert "error" not in result[side], result[side]
        for workload, figure in WORKLOAD_FIGURES.items():
            assert _number(result[side][workload][figure]), (side, workload)
    assert result["shoal_3node_r3"]["replication_factor"] == 3

    failover = result["failover"]
    assert "error" not in failover, failover
    assert failover["kills"] == 2 and failover["failed_kills"] == 0
    for key in ("failover_p50_s", "failover_p99_s", "failover_max_s"):
        assert _number(failover[key]), key
    assert len(failover["each_failover_s"]) == 2
    for row in failover["per_kill"]:
        assert _number(row["failover_s"]) and _number(row["restart_to_balanced_s"])
        # the shard was taken over by a survivor, not by the restarted victim
        assert row["successor"] is not None and row["successor"] != row["victim"]
