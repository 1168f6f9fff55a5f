"""Shard and task-queue-partition placement over the live members (DESIGN §2, §3, §4).

Owns: the pure functions that map a shard to its ordered replica set (first element = the
leader hint) and a task-queue partition to its owner. Every node computes the same answer
from the same member set, so everything here is a deterministic function of its arguments:
hashes are blake2b (never ``hash()``), ties break on member id, nothing iterates a set.
Must not: do I/O, read clocks, or know who is alive (the caller passes the live members).

Why rendezvous hashing with bounded loads (and not a vnode ring):
with 512 shards over 50 members a member's mean is ~10 leaders; any purely random scheme
(vnode ring or plain rendezvous) spreads that with a Poisson-like tail, so the busiest
member carries far more than the mean (measured with plain rendezvous at N = 50: max/mean
1.56 for leaders, 1.40 for replicas). We need max/mean <= 1.10. So we keep rendezvous
scores as each shard's preference order over members and assign greedily, best score
first, with a capacity per member of ``floor(load_factor * mean)`` (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
Bounded Loads", 2018). Because the greedy walks one global score order, a join or leave
only disturbs the shards whose best-scoring choice changed plus a short cascade of
capacity spill-over; ``ring.stats`` measures that against the 1/N ideal.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

REPLICATION_FACTOR = 3
LOAD_FACTOR = 1.10  # capacity per member = floor(LOAD_FACTOR * mean) (never below ceil(mean))


def score(key: bytes, member: str) -> int:
    """Rendezvous score of ``member`` for ``key``: 64 bits of blake2b, stable everywhere."""
    digest = hashlib.blake2b(key + b"\x00" + member.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _shard_key(shard: int) -> bytes:
    return b"shard:" + str(shard).encode()


@dataclass(frozen=True, slots=True)
class Placement:
    """The replica set of every shard for one member set.

    ``replicas[s]`` is shard ``s``'s ordered replica set; element 0 is the leader hint,
    the rest follow in descending rendezvous score (the order a fallback uses).
    """

    members: tuple[str, ...]
    replicas: tuple[tuple[str, ...], ...]

    def replica_set(self, shard: int) -> tuple[str, ...]:
        """Ordered replica set of ``shard`` (leader hint first)."""
        return self.replicas[shard]

    def leader(self, shard: int) -> str:
        """The member the ring names as ``shard``'s leader."""
        return self.replicas[shard][0]


def _capacity(items: int, members: int, load_factor: float) -> int:
    mean = items / members
    return max(math.ceil(mean), math.floor(load_factor * mean))


def _greedy(pairs: list[tuple[int, int, str]], need: list[int], load: dict[str, int],
            cap: int, sets: list[list[str]]) -> None:
    """Fill ``need[s]`` more slots of each shard, best score first, respecting ``cap``."""
    for _neg, shard, member in pairs:
        if need[shard] and load[member] < cap and member not in sets[shard]:
            sets[shard].append(member)
            load[member] += 1
            need[shard] -= 1


@functools.lru_cache(maxsize=64)
def _place(members: tuple[str, ...], num_shards: int, rf: int, load_factor: float) -> Placement:
    r = min(rf, len(members))
    # One global list of (-score, shard, member): the greedy's order. Sorting on the
    # negated score then shard then member id makes it total, hence the same everywhere.
    scores = [[score(_shard_key(s), m) for m in members] for s in range(num_shards)]
    pairs = sorted((-scores[s][i], s, m) for s in range(num_shards) for i, m in enumerate(members))
    sets: list[list[str]] = [[] for _ in range(num_shards)]
    # Pass 1: leaders, capacity from the leader mean.
    lead_load = dict.fromkeys(members, 0)
    _greedy(pairs, [1] * num_shards, lead_load, _capacity(num_shards, len(members), load_factor),
            sets)
    # Pass 2: the other replicas; a member's leader slots count towards its replica load.
    rep_load = dict(lead_load)
    need = [r - 1] * num_shards
    _greedy(pairs, need, rep_load, _capacity(num_shards * r, len(members), load_factor), sets)
    if any(need):  # capacity left only on members already in a set: ignore the bound
        _greedy(pairs, need, rep_load, num_shards, sets)
    assert not any(need)
    rank = {m: i for i, m in enumerate(members)}
    out = []
    for s, chosen in enumerate(sets):
        rest = sorted(chosen[1:], key=lambda m: (-scores[s][rank[m]], m))
        out.append((chosen[0], *rest))
    return Placement(members, tuple(out))


def placement(members: Iterable[str], num_shards: int,
              replication_factor: int = REPLICATION_FACTOR,
              load_factor: float = LOAD_FACTOR) -> Placement:
    """Place ``num_shards`` shards over ``members``.

    Args:
        members: live member ids (any order; duplicates ignored).
        num_shards: NUM_SHARDS of the cluster.
        replication_factor: wanted R; each set has ``min(R, len(members))`` members.
        load_factor: per-member capacity as a multiple of the mean (>= 1).

    Returns:
        A :class:`Placement` (cached per argument tuple; treat as read-only).

    Raises:
        ValueError: no members, or non-positive shard count or replication factor.
    """
    ms = tuple(sorted(set(members)))
    if not ms or num_shards <= 0 or replication_factor <= 0 or load_factor < 1.0:
        raise ValueError("placement needs members, num_shards > 0, R > 0, load_factor >= 1")
    return _place(ms, num_shards, replication_factor, load_factor)


def replica_set(members: Iterable[str], shard: int, num_shards: int,
                replication_factor: int = REPLICATION_FACTOR) -> tuple[str, ...]:
    """Ordered replica set of ``shard`` (leader hint first); see :func:`placement`."""
    return placement(members, num_shards, replication_factor).replica_set(shard)


def partition_owner(members: Sequence[str] | Iterable[str], namespace: str, queue: str,
                    partition: int) -> str:
    """Owner of task-queue partition ``(namespace, queue, partition)`` (DESIGN §3.4).

    Plain rendezvous (highest score wins): partitions are an open-ended set so there is no
    global view to balance against, and HRW moves exactly the partitions of a member that
    leaves, or the ~1/N a joiner wins.

    Raises:
        ValueError: no members.
    """
    key = b"tq:" + namespace.encode() + b"\x00" + queue.encode() + b"\x00" + str(partition).encode()
    best = max(((score(key, m), m) for m in sorted(set(members))), default=None)
    if best is None:
        raise ValueError("partition_owner needs at least one member")
    return best[1]
