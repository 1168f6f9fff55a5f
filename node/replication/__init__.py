"""Per-shard replication (DESIGN §4): consensus core, driver, transport, hosting, steward.

``core.py`` holds :class:`Replica`, the sans-IO core with its candidate and leader roles; it
emits an :class:`Output` after every input. Around it: ``driver.py`` (the trio shell that
persists and sends an Output), ``transport.py`` (replication messages over peer links),
``hosting.py`` (the replicas this node hosts), ``steward.py`` (what each replica should do as
members come and go, sans-IO) and ``storage.py`` (a replica's durable state in LMDB).
Must not: know workflow semantics (entries are opaque batches of mutations).
"""

from shoal.node.replication.core import Replica
from shoal.node.replication.types import (
    NodeId, Output, PersistedState, ReadReady, ReplicaConfig, Role, RoleChanged,
    SnapshotInstall, SnapshotMeta,
)

__all__ = [
    "NodeId", "Output", "PersistedState", "ReadReady", "Replica", "ReplicaConfig", "Role",
    "RoleChanged", "SnapshotInstall", "SnapshotMeta",
]
