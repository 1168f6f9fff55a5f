"""Ring: pure placement of shards and task-queue partitions over the live members.

See :mod:`shoal.ring.placement` (the functions) and :mod:`shoal.ring.stats` (balance and
movement figures). No I/O, no clocks: the caller passes the live member set.
"""

from shoal.ring.placement import Placement, partition_owner, placement, replica_set

__all__ = ["Placement", "partition_owner", "placement", "replica_set"]
