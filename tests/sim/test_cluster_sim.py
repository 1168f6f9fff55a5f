"""Whole-cluster simulator: seeds stay clean for 3 and 5 nodes, a seed replays byte for
byte, ``shoal sim cluster`` prints it, and the checks bite when a bug is planted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shoal import wire
from shoal.cli.main import app
from shoal.node.replication import Role, RoleChanged
from shoal.sim.cluster_check import ClusterChecker
from shoal.sim.cluster_history import (
    ACTIVITY_COMPLETED, COMPLETED, STARTED, ShardState, history_violations,
)
from shoal.sim.cluster_sim import dumps, run_cluster_sim


def _assert_clean(rep: dict) -> None:
    assert rep["violation_count"] == 0, rep["violations"]
    assert rep["converged_after_heal_s"] is not None
    assert rep["workflows_completed"] == rep["workflows_started"] > 0
    assert rep["acknowledged_writes"] == rep["workflows_completed"] * (
        rep["params"]["activities"] + 2)


@pytest.mark.parametrize("seed", range(1, 7))
def test_three_nodes_under_chaos_keep_every_invariant(seed: int) -> None:
    rep = run_cluster_sim(nodes=3, seed=seed, steps=20_000)
    _assert_clean(rep)
    assert rep["joined"] == "n3" and rep["retired"] is not None


@pytest.mark.parametrize("seed", range(1, 6))
def test_five_nodes_under_chaos_keep_every_invariant(seed: int) -> None:
    rep = run_cluster_sim(nodes=5, seed=seed, steps=20_000)
    _assert_clean(rep)
    assert rep["joined"] == "n5" and rep["retired"] is not None


@pytest.mark.parametrize("seed", range(1, 4))
def test_a_replaced_node_that_comes_back_leads_its_share_again(seed: int) -> None:
    # The 5-node integration test's restart (issue 7): the node that died for good and was
    # replaced restarts on its disk at the heal; convergence includes every shard being
    # led by the ring's first member, so the returning node must lead its share again.
    rep = run_cluster_sim(nodes=5, seed=seed, steps=20_000, comeback=True)
    _assert_clean(rep)
    assert rep["params"]["comeback"] and rep["retired"] is not None


def test_longer_run_exercises_every_fault_and_stays_clean() -> None:
    rep = run_cluster_sim(nodes=5, seed=7, steps=80_000)
    _assert_clean(rep)
    for key in ("crashes", "partitions", "pauses", "failovers", "unknown_outcomes",
                "not_leader_retries"):
        assert rep[key] > 0, key
    assert rep["max_leaderless_s"] > 0


def test_same_seed_gives_the_same_bytes() -> None:
    assert dumps(run_cluster_sim(nodes=3, seed=5, steps=6000)) == \
        dumps(run_cluster_sim(nodes=3, seed=5, steps=6000))


def test_shoal_sim_cluster_prints_one_json_object() -> None:
    result = CliRunner().invoke(app, ["sim", "cluster", "--nodes", "3", "--seed", "2",
                                      "--steps", "4000", "--json"])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert rep["violation_count"] == 0 and rep["params"]["nodes"] == 3


# --- the checks can fail -------------------------------------------------------------------


def test_a_node_applying_an_entry_twice_is_caught() -> None:
    rep = run_cluster_sim(nodes=3, seed=1, steps=6000, plant="apply_twice")
    assert rep["violation_count"] > 0
    assert any("applied shard" in v and "after" in v for v in rep["violations"])


def test_an_answer_sent_before_the_write_committed_is_caught_as_a_lost_ack() -> None:
    rep = run_cluster_sim(nodes=3, seed=1, steps=6000, plant="ack_on_propose")
    assert any("acknowledged index" in v and "durable on only" in v
               for v in rep["violations"])


class _Clock:
    now, step = 1.0, 2


def test_two_lives_of_a_node_speaking_for_one_epoch_are_caught() -> None:
    check = ClusterChecker(1, _Clock())
    epoch = wire.Epoch(counter=5, node="n2")
    led = RoleChanged(Role.LEADER, epoch, "n2", serving=False)
    check.on_role("n2", 0, led, 1.0)
    check.on_role("n2", 0, led, 2.0)  # led again after a restart: fine while silent
    check.on_leader_send("n2", 2, 0, epoch)
    check.on_leader_send("n2", 2, 0, epoch)
    assert check.violation_count == 0
    check.on_leader_send("n2", 1, 0, epoch)
    assert check.violation_count == 1 and "boot 1" in check.violations[0]
    check.on_role("n3", 0, RoleChanged(Role.LEADER, epoch, "n3", serving=False), 3.0)
    assert any("after n2" in v for v in check.violations)


def test_final_check_flags_an_acknowledged_write_missing_on_a_member() -> None:
    check = ClusterChecker(1, _Clock())
    held, lost = ShardState(), ShardState()
    held.apply(_entry(1, STARTED))
    check.check_final([(0, (STARTED, "wf", 0))], {0: [("n0", held), ("n1", lost)]})
    assert check.violation_count == 1 and "missing on n1" in check.violations[0]


def test_a_state_machine_that_does_not_dedupe_retries_breaks_the_histories() -> None:
    rep = run_cluster_sim(nodes=3, seed=2, steps=15_000, plant="no_dedupe")
    assert any("history" in v for v in rep["violations"])


def _entry(index: int, kind: str, k: int = 0) -> wire.ReplEntry:
    return wire.ReplEntry(epoch=wire.EPOCH_ZERO, index=index, payload=(kind, "wf", k))


def test_history_checker_flags_each_invalid_shape() -> None:
    ok = ShardState()
    for i, (kind, k) in enumerate([(STARTED, 0), (ACTIVITY_COMPLETED, 1), (COMPLETED, 0)]):
        ok.apply(_entry(i + 1, kind, k))
    assert history_violations(ok) == []
    cases = {
        "not dense": ((1, STARTED, 0), (3, COMPLETED, 0)),
        "start events": ((1, ACTIVITY_COMPLETED, 1), (2, STARTED, 0)),
        "completed 2 times": ((1, STARTED, 0), (2, COMPLETED, 0), (3, COMPLETED, 0)),
        "after the close": ((1, STARTED, 0), (2, COMPLETED, 0), (3, ACTIVITY_COMPLETED, 1)),
        "recorded twice": ((1, STARTED, 0), (2, ACTIVITY_COMPLETED, 1),
                           (3, ACTIVITY_COMPLETED, 1)),
    }
    for phrase, hist in cases.items():
        bad = history_violations(ShardState(histories={"wf": hist}))
        assert any(phrase in b for b in bad), (phrase, bad)


def test_state_machine_ignores_a_retried_command() -> None:
    state = ShardState()
    for i, (kind, k) in enumerate([(STARTED, 0), (STARTED, 0), (ACTIVITY_COMPLETED, 1),
                                   (ACTIVITY_COMPLETED, 1), (COMPLETED, 0), (COMPLETED, 0),
                                   (ACTIVITY_COMPLETED, 2)]):
        state.apply(_entry(i + 1, kind, k))
    assert state.histories["wf"] == ((1, STARTED, 0), (2, ACTIVITY_COMPLETED, 1),
                                     (3, COMPLETED, 0))
    assert state.index == 7
