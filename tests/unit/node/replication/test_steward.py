"""ShardSteward decisions (node/replication/steward.py): plain calls, now=float."""

from __future__ import annotations

from shoal.node.replication.types import Role
from shoal.node.replication.steward import Reconfigure, ReplicaView, ShardSteward

SHARDS = 16


def _leading(voters: tuple[str, ...]) -> ReplicaView:
    return ReplicaView(role=Role.LEADER, serving=True, leader="n2", voters=voters)


def test_restarted_leader_does_not_shrink_its_shard_to_the_members_it_has_heard_of() -> None:
    # n2 restarted and won its shard back before gossip told it about anyone (found by
    # `shoal sim cluster --nodes 3 --seed 10`): it must not drop n0 and n1, of whom it
    # simply has no news yet. Removing a live voter while another is dead left a 2-voter
    # config with a dead voter that no node could ever commit in again.
    steward = ShardSteward("n2", SHARDS, replace_after_s=5.0)
    for shard in range(SHARDS):
        actions = steward.decide(shard, _leading(("n0", "n1", "n2")), now=1.0)
        assert not [a for a in actions if isinstance(a, Reconfigure)], (shard, actions)


def test_voter_never_heard_of_is_replaced_once_unheard_past_replace_after() -> None:
    steward = ShardSteward("n2", SHARDS, replace_after_s=5.0)
    steward.set_members(["n0", "n2", "n3"], now=0.0)
    view = _leading(("n1", "n2", "n3"))
    steward.decide(0, view, now=1.0)
    # Unheard of, but not for long yet: n1 keeps its place in the ring.
    shard = next(s for s in range(SHARDS) if "n1" in steward.target(s, 1.0))
    early = steward.decide(shard, view, now=5.9)
    assert all("n1" in a.voters for a in early if isinstance(a, Reconfigure)), early
    later = steward.decide(shard, view, now=6.1)
    assert "n1" not in steward.target(shard, 6.1)
    assert later == [Reconfigure(shard, steward.target(shard, 6.1))]


def _shard_with(steward: ShardSteward, now: float, *members: str) -> int:
    return next(s for s in range(SHARDS) if all(m in steward.target(s, now) for m in members))


def test_leader_keeps_a_voter_while_the_rings_new_choice_is_a_dead_learner() -> None:
    # `shoal sim cluster --nodes 5 --seed 11`: the learner being added died; the ring
    # still names it (dead < replace_after_s), the steward dropped it from the wanted set,
    # and the core removed the voter it was to replace: 2 voters, one of which then died.
    steward = ShardSteward("n1", SHARDS, replace_after_s=5.0)
    everyone = ["n0", "n1", "n2", "n3", "n4", "n5"]
    steward.set_members(everyone, now=0.0)
    steward.set_members([m for m in everyone if m != "n4"], now=1.0)
    shard = _shard_with(steward, 1.0, "n1", "n4")
    target = steward.target(shard, 1.0)
    spare = next(m for m in everyone if m not in target)
    voters = tuple(m for m in target if m != "n4") + (spare,)
    view = ReplicaView(role=Role.LEADER, serving=True, leader="n1", voters=voters,
                       learners=("n4",))
    for action in steward.decide(shard, view, now=1.5):
        if isinstance(action, Reconfigure):
            assert len(action.voters) >= len(voters), action
            assert "n4" in action.voters or spare in action.voters, action


def test_leader_does_not_shrink_when_the_rings_choice_is_down_and_not_a_member() -> None:
    steward = ShardSteward("n1", SHARDS, replace_after_s=5.0)
    everyone = ["n0", "n1", "n2", "n3", "n4", "n5"]
    steward.set_members(everyone, now=0.0)
    steward.set_members([m for m in everyone if m != "n4"], now=1.0)
    shard = _shard_with(steward, 1.0, "n1", "n4")
    target = steward.target(shard, 1.0)
    others = [m for m in everyone if m not in target]
    voters = tuple(m for m in target if m != "n4") + (others[0],)
    view = ReplicaView(role=Role.LEADER, serving=True, leader="n1", voters=voters)
    for action in steward.decide(shard, view, now=1.5):
        if isinstance(action, Reconfigure):
            assert set(voters) <= set(action.voters), action


def test_leader_cut_off_from_gossip_does_not_shrink_its_shard_below_r() -> None:
    # `shoal sim cluster --nodes 3 --seed 14 --steps 5000`: n2's gossip had declared
    # everyone dead more than replace_after_s ago (a partition), yet replication reached
    # them and n2 led the shard; its steward asked for the set (n2,), the core removed a
    # live voter, and the (dead, n2) config that was left could never commit again.
    steward = ShardSteward("n2", SHARDS, replace_after_s=5.0)
    steward.set_members(["n0", "n1", "n2"], now=0.0)
    steward.set_members(["n2"], now=1.0)
    view = ReplicaView(role=Role.LEADER, serving=True, leader="n2", voters=("n0", "n1", "n2"))
    for shard in range(SHARDS):
        assert steward.decide(shard, view, now=10.0) == [], shard


def test_dead_voter_is_still_replaced_when_a_new_member_is_alive() -> None:
    steward = ShardSteward("n2", SHARDS, replace_after_s=5.0)
    steward.set_members(["n0", "n1", "n2"], now=0.0)
    steward.set_members(["n0", "n2", "n3"], now=1.0)
    view = ReplicaView(role=Role.LEADER, serving=True, leader="n2", voters=("n0", "n1", "n2"))
    actions = steward.decide(0, view, now=10.0)
    assert actions == [Reconfigure(0, steward.target(0, 10.0))]
    assert sorted(steward.target(0, 10.0)) == ["n0", "n2", "n3"]


def test_a_voter_outside_the_rings_set_is_kept_however_long_it_is_silent() -> None:
    """Its own config lists it as a voter: it may be cut off by a partition rather than
    removed, and a group whose voters were released for silence can lose its majority.
    A removed member learns it (wire.Removed) and goes then; a replica whose config does
    not list it as a voter is released after RELEASE_SILENT_S."""
    from shoal.node.replication.steward import RELEASE_SILENT_S, Release

    steward = ShardSteward("n9", 4)
    steward.set_members(["n0", "n1", "n2", "n9"], 0.0)
    shard = next(s for s in range(4) if "n9" not in steward.target(s, 0.0))
    silent_voter = ReplicaView(role=Role.FOLLOWER, serving=False, leader=None,
                               voters=("n0", "n1", "n9"), silent_s=10 * RELEASE_SILENT_S)
    assert steward.decide(shard, silent_voter, 1.0) == []
    learner = ReplicaView(role=Role.FOLLOWER, serving=False, leader=None,
                          voters=("n0", "n1", "n2"), learners=("n9",), silent_s=1.0)
    assert steward.decide(shard, learner, 1.0) == []
    silent_learner = ReplicaView(role=Role.FOLLOWER, serving=False, leader=None,
                                 voters=("n0", "n1", "n2"), learners=("n9",),
                                 silent_s=RELEASE_SILENT_S)
    assert steward.decide(shard, silent_learner, 1.0) == [Release(shard)]


def test_a_replica_told_it_was_removed_is_released_with_its_data_even_if_ring_names_it() -> None:
    """Only a committed removal lets the data go; the ring may still name this node (then
    an empty replica is hosted next, for the leader to add back by snapshot)."""
    from shoal.node.replication.steward import Host, Release

    steward = ShardSteward("n9", 4)
    steward.set_members(["n0", "n1", "n9"], 0.0)
    shard = 0
    assert "n9" in steward.target(shard, 0.0)
    removed = ReplicaView(role=Role.FOLLOWER, serving=False, leader=None,
                          voters=("n0", "n1", "n9"), removed=True)
    assert steward.decide(shard, removed, 1.0) == [Release(shard, drop_data=True)]
    assert steward.decide(shard, None, 1.0) == [Host(shard)]
