"""A short chaos run in ``make test`` (issue 7): 3 real nodes, about 40 s of faults with
two ``kill -9``s, workflows started throughout; ``make chaos`` runs the long version."""

from __future__ import annotations

import json

import pytest

from chaos.chaos_run import ChaosConfig, run_chaos

# Start-up, 40 s of faults (longer while kills are owed), the heal and the drain.
pytestmark = pytest.mark.timeout(480)


async def test_short_chaos_run_completes_every_workflow_and_keeps_every_invariant(tmp_path) -> None:
    report = await run_chaos(ChaosConfig(
        nodes=3, seconds=40, seed=7, rate_per_s=2.0, min_kills=2,
        kinds=("kill9", "partition"), keep_dir=tmp_path / "chaos",
        # Every kill is seen by the survivors before the node is back: a faster restart
        # loses the tasks parked in its matching (tests/chaos/repro_lost_tasks.py), a
        # known bug `make chaos` still exercises.
        min_down_s=6.0))
    print(json.dumps(report, indent=1, sort_keys=True))  # shown when the test fails
    assert report["violation_count"] == 0, report["violations"]
    assert report["faults"].get("kill9", 0) >= 2, report["fault_log"]
    assert report["healed"]
    w = report["workflows"]
    assert w["attempted"] > 0
    assert w["started"] == w["completed"] == w["right_result"] == w["attempted"], w
    assert w["signals_acked"] == 2 * w["started"], w
