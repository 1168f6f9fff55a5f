"""Where a workflow id lives: ``shard = hash(namespace, workflow_id) mod NUM_SHARDS`` (DESIGN §3.1).

Owns: the shard function. It must give the same answer on every node, every run and every
Python version, so it hashes with blake2b, never ``hash()``. Must not: know who leads a shard
(the ring does).
"""

from __future__ import annotations

import hashlib


def shard_for(namespace: str, workflow_id: str, num_shards: int) -> int:
    """The shard that holds ``workflow_id`` of ``namespace``."""
    assert num_shards > 0
    digest = hashlib.blake2b(
        namespace.encode() + b"\x00" + workflow_id.encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") % num_shards
