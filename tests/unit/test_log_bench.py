"""The log bench runs end to end (a short case), so its figures come from working code."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.bench import log_bench

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("nodes", [("a",), ("a", "b", "c")])
async def test_a_short_case_commits_entries(tmp_path: Path, nodes: tuple[str, ...]) -> None:
    result = await log_bench._run_case(tmp_path, nodes, writers=8, seconds=0.3)
    assert result["entries_per_s"] > 0 and result["count"] > 0
    assert result["leader_fsyncs_per_s"] > 0
    if len(nodes) > 1:
        assert result["messages_per_entry"] > 0


def test_three_processes_replicate_over_the_peer_link(tmp_path: Path) -> None:
    results = log_bench.run_processes(tmp_path, seconds=0.3)
    assert [r["writers"] for r in results] == [1, 8, 64]
    assert all(r["count"] > 0 and r["leader_messages_sent_per_entry"] > 0 for r in results)
