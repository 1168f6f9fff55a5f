"""Quorum arithmetic for one shard's voters (DESIGN §4). Pure functions, no state.

Owns: what "a majority" is, the highest index a majority has persisted, and whether a set
of members forms a majority. Must not: know about roles, epochs or messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def majority(voters: int) -> int:
    """Smallest number of voters that is more than half of ``voters`` (>= 1)."""
    assert voters >= 1
    return voters // 2 + 1


def committed_index(match: Mapping[str, int], voters: Sequence[str]) -> int:
    """Highest index persisted by a majority of ``voters``; a voter absent from ``match``
    counts as 0. Sorting descending, the majority-th value is held by at least that many."""
    values = sorted((match.get(v, 0) for v in voters), reverse=True)
    return values[majority(len(values)) - 1]


def is_majority(members: Iterable[str], voters: Sequence[str]) -> bool:
    """Whether ``members`` contains a majority of ``voters``."""
    have = set(members)
    return sum(1 for v in voters if v in have) >= majority(len(voters))
