"""Bookkeeping records the store keeps besides workflow data: the identity a data dir was
created with, and each shard's task-id ceiling.

Owns: their plain-data shape (encoded with ``wire``'s codec by ``tables.py``). Must not: do
I/O or hold behaviour. Adding a field with a default is compatible; renaming one is not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, kw_only=True)
class ShardMeta:
    """Per-shard bookkeeping kept in the shard's own key range.

    ``task_id_ceiling``: task ids are handed out from memory below this persisted ceiling,
    which is raised in blocks, so ids stay unique and increasing across restarts and
    takeovers without a write per id (Temporal's range id plays the same part).
    """

    task_id_ceiling: int = 0


@dataclass(slots=True, kw_only=True)
class ClusterMeta:
    """The identity a data dir was created with; checked at every start (DESIGN §3.1)."""

    cluster_name: str
    num_shards: int
    node_id: str
    created_at: float
