"""The replication core driven directly: two-or-more-party scenarios through the harness
(instant storage, one FIFO queue, optional drops)."""

from __future__ import annotations

import random

import pytest
from helpers.replication_harness import Harness

from shoal import wire
from shoal.node.replication import PersistedState, Replica, ReplicaConfig, Role


def _payloads(h: Harness, node: str) -> list:
    return [e.payload for e in h.applied[node] if e.kind == wire.EntryKind.NORMAL]


def test_single_member_commits_on_local_persistence() -> None:
    h = Harness(["a"])
    h.campaign("a")
    assert h.nodes["a"].serving
    h.propose("a", "x")
    assert _payloads(h, "a") == ["x"]
    assert not h.queue  # nobody to talk to


def test_election_and_one_write_produce_this_message_trace() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.propose("a", "x")
    h.run()
    prepares = [m for src, dst, m in h.sent if isinstance(m, wire.Prepare)]
    assert [m.pre for m in prepares] == [True, True, False, False]
    assert h.trace[:16] == [
        "a->b Prepare", "a->c Prepare", "b->a Promise", "c->a Promise",  # the pre-vote
        "a->b Prepare", "a->c Prepare", "b->a Promise", "c->a Promise",
        "a->b Append", "a->c Append",  # the no-op at the new epoch
        "b->a AppendAck", "b->a AppendAck", "c->a AppendAck", "c->a AppendAck",
        "a->b Append", "a->c Append",  # "x"
    ]
    assert all(_payloads(h, n) == ["x"] for n in "a")


def test_write_commits_on_all_after_heartbeat() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    for i in range(5):
        h.propose("a", i)
    h.run()
    h.tick(0.06)
    h.run()
    assert all(_payloads(h, n) == [0, 1, 2, 3, 4] for n in "abc")


def test_propose_on_a_follower_is_not_leader() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    with pytest.raises(wire.ShoalError) as err:
        h.propose("b", "x")
    assert err.value.code == wire.Code.NOT_LEADER and err.value.details["leader"] == "a"


def test_takeover_catches_up_from_the_most_advanced_member() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: dst == "c" or src == "c"
    h.propose("a", "only-a-and-b")
    h.run()
    assert _payloads(h, "a") == ["only-a-and-b"]  # committed by a and b
    h.down.add("a")
    h.drop = lambda src, dst, msg: False
    h.campaign("c")  # c lacks the entry; b has it
    assert h.nodes["c"].role is Role.LEADER and "c->b CatchUp" in h.trace
    h.propose("c", "next")
    h.run()
    h.tick(0.06)
    h.run()
    assert _payloads(h, "c") == ["only-a-and-b", "next"]
    assert _payloads(h, "b") == ["only-a-and-b", "next"]


def test_deposed_leader_steps_down_at_once_when_rejected() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: "a" in (src, dst)
    h.campaign("b")  # a does not hear of it
    assert h.nodes["a"].role is Role.LEADER
    h.drop = lambda src, dst, msg: False
    h.propose("a", "stale")  # a still believes it leads
    h.run()
    assert h.nodes["a"].role is Role.FOLLOWER
    assert h.events["a"][-1].role is Role.FOLLOWER
    assert "stale" not in _payloads(h, "b") + _payloads(h, "c")


def test_conflicting_tail_is_replaced_by_the_new_leaders_log() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: "a" in (src, dst)
    for i in range(3):
        h.propose("a", f"lost{i}")  # nobody else gets these
    h.run()
    h.drop = lambda src, dst, msg: "a" in (src, dst)
    h.campaign("b")
    h.propose("b", "kept")
    h.run()
    h.drop = lambda src, dst, msg: False
    for _ in range(4):
        h.tick(0.06)
        h.run()
    assert _payloads(h, "a") == ["kept"]
    assert h.nodes["a"].log.last_index == h.nodes["b"].log.last_index


def test_read_is_served_only_after_a_quorum_confirms_leadership() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.propose("a", "x")
    h.run()
    h.drop = lambda src, dst, msg: True
    h.read("a", "r1")
    h.run()
    assert h.reads["a"] == []  # no peer answered: not confirmed
    h.drop = lambda src, dst, msg: dst == "c"
    h.tick(0.06)  # the heartbeat carries the read round
    h.run()
    assert h.reads["a"] == [("r1", ["x"])]


def test_pending_read_fails_when_leadership_is_lost() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: "a" in (src, dst)
    h.read("a", "r1")
    h.campaign("b")
    h.drop = lambda src, dst, msg: False
    h.tick(0.06)
    h.run()
    assert h.reads["a"] == [] and h.nodes["a"].role is Role.FOLLOWER


def test_appends_are_pipelined_up_to_max_inflight_then_batched() -> None:
    h = Harness(["a", "b"], cfg=ReplicaConfig(fallback=False, max_inflight=2))
    h.campaign("a")
    h.tick(0.06)
    h.run()
    sent: list[wire.Append] = []
    h.drop = lambda src, dst, msg: sent.append(msg) or False if dst == "b" else False
    h.queue.clear()
    for i in range(5):
        h.propose("a", i)
    appends = [m for _, d, m in h.queue if d == "b"]
    assert [len(m.entries) for m in appends] == [1, 1]  # window of two, then wait
    h.run()
    assert max(len(m.entries) for m in sent) >= 2  # the backlog went out together
    h.tick(0.06)
    h.run()
    assert _payloads(h, "b") == [0, 1, 2, 3, 4]


def test_learner_too_far_behind_gets_a_snapshot_then_joins() -> None:
    cfg = ReplicaConfig(fallback=False, compact_lag_entries=4)
    h = Harness(["a", "b", "c"], others=["d"], cfg=cfg)
    h.campaign("a")
    for i in range(20):
        h.propose("a", i)
        h.run()
        h.tick(0.06)
        h.run()
    assert h.nodes["a"].log.snap_index > 1  # compacted once every voter applied
    h.handle("a", h.nodes["a"].reconfigure(("a", "b", "d"), h.now))
    for _ in range(10):
        h.run()
        h.tick(0.06)
    h.run()
    assert h.snapshots["a"] == ["d"]
    assert h.nodes["a"].config == wire.ShardConfig(voters=("a", "b", "d"))
    assert h.state["d"] == list(range(20))


def test_restarted_follower_keeps_its_promise() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: "a" in (src, dst)
    h.campaign("b")
    core = h.nodes["c"]
    state = PersistedState(core.promised, None, tuple(core.log.slice(1, core.log.last_index)),
                           core.applied)
    h.restart("c", state)
    h.drop = lambda src, dst, msg: False
    h.propose("a", "stale")
    h.run()
    assert h.nodes["a"].role is Role.FOLLOWER
    assert "stale" not in _payloads(h, "c")


def test_follower_falls_back_to_campaigning_without_a_leader() -> None:
    h = Harness(["a", "b", "c"], cfg=ReplicaConfig(leader_timeout_s=0.5))
    for _ in range(40):
        h.tick(0.05)
        h.run()
    leaders = [n for n, c in h.nodes.items() if c.role is Role.LEADER]
    assert len(leaders) == 1 and h.nodes[leaders[0]].serving


def test_campaign_that_wins_no_promise_does_not_disrupt_the_leader() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    epoch = h.nodes["c"].epoch
    h.drop = lambda src, dst, msg: src == "c" and isinstance(msg, wire.Prepare)
    h.campaign("c")  # nobody hears it (as when c's config is stale and others refuse)
    assert h.nodes["c"].epoch == epoch  # c never promised itself
    for _ in range(12):  # c gives up after prepare_timeout_s; a keeps heartbeating
        h.tick(0.06)
        h.run()
    assert h.nodes["a"].role is Role.LEADER and h.nodes["a"].epoch == epoch
    assert h.nodes["c"].leader == "a"


def test_a_replica_never_sends_before_it_is_told_what_to_persist() -> None:
    core = Replica("a", 0, ReplicaConfig(), random.Random(1))
    out = core.bootstrap(wire.ShardConfig(voters=("a", "b", "c")))
    out = core.campaign(0.0)
    assert out.hard_state is None and [type(m) for _, m in out.send] == [wire.Prepare] * 2


def _write_while_c_is_away(h: Harness, n: int) -> None:
    h.drop = lambda src, dst, msg: "c" in (src, dst)
    for i in range(n):
        h.propose("a", i)
        h.run()
        h.tick(0.06)
        h.run()


def test_a_silent_voter_does_not_hold_compaction_back_and_gets_a_snapshot_later() -> None:
    cfg = ReplicaConfig(fallback=False, compact_lag_entries=4, compact_silent_s=0.5,
                        compact_retain_entries=8)
    h = Harness(["a", "b", "c"], cfg=cfg)
    h.campaign("a")
    _write_while_c_is_away(h, 30)
    # Every voter heard from lately applied it all: a and b compacted although c never
    # acknowledged anything.
    assert h.nodes["a"].log.snap_index > 20 and h.nodes["b"].log.snap_index > 20
    assert h.nodes["c"].log.last_index < 5
    h.drop = lambda src, dst, msg: False
    for _ in range(40):  # past snapshot_timeout_s: the first snapshot went while c was away
        h.tick(0.06)
        h.run()
    assert set(h.snapshots["a"]) == {"c"}
    assert h.state["c"] == list(range(30))


def test_a_voter_back_from_a_short_absence_catches_up_from_the_log() -> None:
    cfg = ReplicaConfig(fallback=False, compact_lag_entries=4, compact_silent_s=0.5,
                        compact_retain_entries=100)
    h = Harness(["a", "b", "c"], cfg=cfg)
    h.campaign("a")
    _write_while_c_is_away(h, 30)  # silent, but within compact_retain_entries
    assert h.nodes["a"].log.snap_index <= 1
    h.drop = lambda src, dst, msg: False
    for _ in range(5):
        h.tick(0.06)
        h.run()
    assert h.snapshots["a"] == [] and h.state["c"] == list(range(30))


def test_compaction_waits_for_a_voter_that_is_only_slow_to_answer() -> None:
    cfg = ReplicaConfig(fallback=False, compact_lag_entries=4, compact_silent_s=10.0)
    h = Harness(["a", "b", "c"], cfg=cfg)
    h.campaign("a")
    _write_while_c_is_away(h, 30)  # 1.8 s of silence: under compact_silent_s
    assert h.nodes["a"].log.snap_index <= 1 and h.nodes["b"].log.snap_index <= 1


def test_a_candidate_behind_the_compaction_point_catches_up_from_a_snapshot() -> None:
    cfg = ReplicaConfig(fallback=False, compact_lag_entries=4, compact_silent_s=0.5,
                        compact_retain_entries=8)
    h = Harness(["a", "b", "c"], cfg=cfg)
    h.campaign("a")
    _write_while_c_is_away(h, 30)
    assert h.nodes["b"].log.snap_index > h.nodes["c"].commit + 1
    h.down.add("a")
    h.drop = lambda src, dst, msg: False
    h.campaign("c")  # the ring names c; only b (compacted past c's log) can promise
    assert "b->c CatchUpReply" in h.trace and h.snapshots["b"] == ["c"]
    assert h.nodes["c"].serving
    h.propose("c", "after")
    h.run()
    h.tick(0.06)
    h.run()
    assert h.state["c"] == list(range(30)) + ["after"]
    assert h.state["b"] == list(range(30)) + ["after"]


def test_a_catch_up_snapshot_for_a_campaign_that_gave_up_is_ignored() -> None:
    cfg = ReplicaConfig(fallback=False, compact_lag_entries=4, compact_silent_s=0.5,
                        compact_retain_entries=8)
    h = Harness(["a", "b", "c"], cfg=cfg)
    h.campaign("a")
    _write_while_c_is_away(h, 30)
    h.down.add("a")
    h.drop = lambda src, dst, msg: isinstance(msg, wire.InstallSnapshot)
    h.campaign("c")
    held = [m for s, d, m in h.queue]  # nothing: the snapshot was dropped
    assert not held and h.nodes["c"].role is Role.CANDIDATE
    for _ in range(40):  # c waits out snapshot_timeout_s, then gives up
        h.tick(0.06)
        h.run()
    assert h.nodes["c"].role is Role.FOLLOWER
    state = list(h.state["c"])
    epoch = h.nodes["c"].epoch
    h.handle("c", h.nodes["c"].on_message("b", wire.InstallSnapshot(
        shard=0, epoch=epoch, index=h.nodes["b"].applied, snap_epoch=epoch,
        config=h.nodes["b"].config, data=["x"]), h.now))
    assert h.state["c"] == state  # a late snapshot of the old campaign changes nothing


def _reconfigure(h: Harness, leader: str, voters: tuple[str, ...]) -> None:
    h.handle(leader, h.nodes[leader].reconfigure(voters, h.now))
    for _ in range(10):
        h.run()
        h.tick(0.06)
    h.run()


def test_a_member_removed_by_a_committed_config_is_told_and_stops_taking_part() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.propose("a", "x")
    _reconfigure(h, "a", ("a", "b"))
    assert h.nodes["a"].config == wire.ShardConfig(voters=("a", "b"))
    assert "a->c Removed" in h.trace and h.nodes["c"].removed
    assert not h.nodes["a"].removed and not h.nodes["b"].removed
    before = h.nodes["c"].epoch
    h.campaign("c")  # a removed replica no longer campaigns (or answers anything)
    assert h.nodes["c"].epoch == before and h.nodes["a"].role is Role.LEADER


def test_a_removed_member_that_missed_the_news_hears_it_when_it_campaigns() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: "c" in (src, dst)
    _reconfigure(h, "a", ("a", "b"))
    assert not h.nodes["c"].removed  # it never heard
    h.drop = lambda src, dst, msg: False
    h.campaign("c")  # its stale config still lists it as a voter
    assert h.nodes["c"].removed
    assert h.nodes["a"].role is Role.LEADER and h.nodes["a"].serving


def test_a_member_added_back_ignores_an_older_removal() -> None:
    h = Harness(["a", "b", "c"])
    h.campaign("a")
    h.drop = lambda src, dst, msg: "c" in (src, dst)
    _reconfigure(h, "a", ("a", "b"))
    removed_at = h.nodes["a"].log.config_index
    h.drop = lambda src, dst, msg: False
    _reconfigure(h, "a", ("a", "b", "c"))
    assert "c" in h.nodes["c"].config.voters and not h.nodes["c"].removed
    h.handle("c", h.nodes["c"].on_message("b", wire.Removed(
        shard=0, epoch=h.nodes["b"].epoch, config_index=removed_at), h.now))
    assert not h.nodes["c"].removed


def test_a_leader_that_removes_itself_hands_over_and_is_removed() -> None:
    h = Harness(["a", "b", "c"], cfg=ReplicaConfig(leader_timeout_s=0.5))
    h.campaign("a")
    _reconfigure(h, "a", ("b", "c"))
    assert h.nodes["a"].removed and h.nodes["a"].role is Role.FOLLOWER
    for _ in range(40):  # b or c takes over by the fallback
        h.tick(0.06)
        h.run()
    assert any(h.nodes[n].serving for n in "bc")


def test_a_campaign_that_cannot_win_raises_nobodys_promise() -> None:
    """c reaches only d (a partition): it can never win a majority of five. With the
    pre-vote it changes no promise either, so the healthy leader a is not deposed by d
    answering a's appends with c's higher epoch."""
    h = Harness(list("abcde"))
    h.campaign("a")
    h.drop = lambda src, dst, msg: "c" in (src, dst) and not {src, dst} == {"c", "d"}
    promised = {n: h.nodes[n].promised for n in "abde"}
    for _ in range(3):
        h.campaign("c")
        for _ in range(10):
            h.tick(0.06)
            h.run()
        assert {n: h.nodes[n].promised for n in "abde"} == promised
    h.propose("a", "x")
    h.run()
    assert h.nodes["a"].serving and "x" in _payloads(h, "a")


def test_a_member_added_by_a_config_a_lagging_voter_lacks_can_still_lead() -> None:
    """b missed the configs that added d and took e out; c, which holds them, is down.
    d, ahead of b, must get b's promise although b's config does not list d, or the
    group (now b, c, d) has no leader until c returns (found by the cluster simulator)."""
    h = Harness(["a", "b", "c"], others=["d"], cfg=ReplicaConfig(fallback=False,
                                                                 learner_lag_entries=100))
    h.campaign("a")
    h.drop = lambda src, dst, msg: dst == "b" and isinstance(msg, wire.Append)
    _reconfigure(h, "a", ("a", "b", "c", "d"))
    _reconfigure(h, "a", ("b", "c", "d"))
    assert h.nodes["a"].removed and "d" not in h.nodes["b"].config.voters
    h.down = {"a", "c"}
    h.drop = lambda src, dst, msg: False
    h.campaign("d")
    assert h.nodes["d"].serving


def test_a_replica_deleted_after_its_removal_cannot_help_a_stale_candidate_lead() -> None:
    """b is removed (and deletes its copy) while c is away; c comes back with the old
    config (a, b, c) and a log without the committed "x". An empty b must not promise,
    or c and b would be a majority of c's config and lead without "x"."""
    h = Harness(["a", "b", "c"], others=["d"], cfg=ReplicaConfig(fallback=False,
                                                                 learner_lag_entries=100))
    h.campaign("a")
    h.down.add("c")
    h.propose("a", "x")
    _reconfigure(h, "a", ("a", "b", "c", "d"))
    _reconfigure(h, "a", ("a", "c", "d"))
    assert h.nodes["b"].removed and "x" in _payloads(h, "a")
    h.restart("b", PersistedState())  # what the node does with a removed replica
    h.down = {"a"}
    h.campaign("c")
    assert not h.nodes["c"].serving
