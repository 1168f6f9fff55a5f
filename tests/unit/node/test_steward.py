"""ShardSteward decisions (node/steward.py): plain calls, now=float."""

from __future__ import annotations

from shoal.node.replication.types import Role
from shoal.node.steward import Reconfigure, ReplicaView, ShardSteward

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
