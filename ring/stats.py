"""Balance and movement figures of :mod:`shoal.ring.placement` (the issue's ring table).

Owns: pure functions that measure a placement: leaders and replicas per member (max/mean)
and the fraction of shards whose replica set (or leader) changes when one member joins or
leaves, next to the ideal. ``python -m shoal.ring.stats`` prints the table as JSON.
Must not: change placement decisions.
"""

from __future__ import annotations

import json
import sys

from shoal.ring.placement import LOAD_FACTOR, REPLICATION_FACTOR, Placement, placement


def load(p: Placement) -> tuple[dict[str, int], dict[str, int]]:
    """(leaders per member, replicas per member) of a placement."""
    leaders = dict.fromkeys(p.members, 0)
    replicas = dict.fromkeys(p.members, 0)
    for rs in p.replicas:
        leaders[rs[0]] += 1
        for m in rs:
            replicas[m] += 1
    return leaders, replicas


def moved(a: Placement, b: Placement) -> tuple[float, float]:
    """(fraction of shards whose replica *set* differs, fraction whose leader differs)."""
    n = len(a.replicas)
    sets = sum(1 for x, y in zip(a.replicas, b.replicas) if sorted(x) != sorted(y))
    leads = sum(1 for x, y in zip(a.replicas, b.replicas) if x[0] != y[0])
    return sets / n, leads / n


def report(members: int, num_shards: int = 512, replication_factor: int = REPLICATION_FACTOR,
           load_factor: float = LOAD_FACTOR) -> dict[str, float]:
    """Balance of ``members`` nodes and movement when one joins / the last one leaves."""
    names = [f"node-{i:03d}" for i in range(members + 1)]
    base = placement(names[:members], num_shards, replication_factor, load_factor)
    leaders, replicas = load(base)
    r = min(replication_factor, members)
    joined = placement(names, num_shards, replication_factor, load_factor)
    left = placement(names[: members - 1], num_shards, replication_factor, load_factor) \
        if members > 1 else base
    j_sets, j_leads = moved(base, joined)
    l_sets, l_leads = moved(base, left)
    r_join, r_leave = min(replication_factor, members + 1), min(replication_factor, members - 1)
    return {
        "members": members,
        "leaders_max_over_mean": max(leaders.values()) / (num_shards / members),
        "replicas_max_over_mean": max(replicas.values()) / (num_shards * r / members),
        "join_sets_moved": j_sets,
        # Minimum: the joiner takes R/(N+1) of the replica slots, at least one per touched
        # shard; when R grows with N every set changes.
        "join_sets_ideal": 1.0 if r_join > r else r / (members + 1),
        "join_leaders_moved": j_leads,
        "join_leaders_ideal": 1 / (members + 1),
        "leave_sets_moved": l_sets,
        "leave_sets_ideal": 1.0 if r_leave < r else r / members,
        "leave_leaders_moved": l_leads,
        "leave_leaders_ideal": 1 / members,
    }


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [3, 5, 10, 50]
    print(json.dumps([report(n) for n in sizes], indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
