"""Per-shard replication: the sans-IO consensus core (DESIGN §4).

:class:`Replica` is the core (``core.py`` with its candidate and leader halves); it emits
an :class:`Output` after every input. The trio driver that wires it to the store and the
peer links lives next to it (issue 6, driver half).
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
