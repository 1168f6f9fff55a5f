"""gossip/members.py: round-robin probe order, reaping, random selection."""

from __future__ import annotations

import random

from shoal import wire
from shoal.gossip.members import Member, MemberList
from shoal.wire import MemberState

META = wire.MemberMeta(api_addr="", cluster_name="c", num_shards=1)


def _list(n: int, seed: int = 1) -> MemberList:
    ml = MemberList(random.Random(seed))
    for i in range(n):
        ml.add(Member(f"m{i}", f"m{i}", 1, MemberState.ALIVE, META, 0.0))
    return ml


def test_round_robin_probes_every_other_member_once_per_round() -> None:
    ml = _list(6)
    for _ in range(3):
        round_ = [ml.next_probe_target("m0", 0.0, 30.0).name for _ in range(5)]
        assert sorted(round_) == ["m1", "m2", "m3", "m4", "m5"]


def test_probe_order_is_reshuffled_between_rounds() -> None:
    ml = _list(12)
    rounds = [tuple(ml.next_probe_target("m0", 0.0, 30.0).name for _ in range(11))
              for _ in range(4)]
    assert len(set(rounds)) > 1


def test_dead_members_are_skipped_and_reaped_after_the_grace_time() -> None:
    ml = _list(3)
    dead = ml.get("m2")
    dead.state, dead.state_change = MemberState.DEAD, 10.0
    targets = {ml.next_probe_target("m0", 11.0, 30.0).name for _ in range(6)}
    assert targets == {"m1"} and ml.get("m2") is not None
    for _ in range(4):
        ml.next_probe_target("m0", 41.0, 30.0)
    assert ml.get("m2") is None and len(ml) == 2


def test_nobody_to_probe_returns_none() -> None:
    assert _list(1).next_probe_target("m0", 0.0, 30.0) is None


def test_k_random_returns_distinct_members_passing_the_filter() -> None:
    ml = _list(10)
    picked = ml.k_random(3, lambda m: m.name in ("m0", "m1"))
    names = [m.name for m in picked]
    assert len(names) == 3 == len(set(names)) and not {"m0", "m1"} & set(names)
    assert len(ml.k_random(5, lambda m: m.name != "m3")) == 1


def test_cluster_mismatch_names_the_field_that_differs() -> None:
    from shoal.gossip.members import cluster_mismatch

    mine = wire.MemberMeta(api_addr="ws://a", cluster_name="c", num_shards=16)
    cases = [
        (dict(), None),
        (dict(api_addr="ws://b", protocol_version=2), None),  # not identity
        (dict(num_shards=8), "NUM_SHARDS 8 differs from ours (16)"),
        (dict(cluster_name="d"), "cluster name 'd' differs from ours ('c')"),
    ]
    for changes, want in cases:
        fields = dict(api_addr="ws://a", cluster_name="c", num_shards=16) | changes
        assert cluster_mismatch(mine, wire.MemberMeta(**fields)) == want
