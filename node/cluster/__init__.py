"""The cluster as the request path sees it (DESIGN §3, §5).

Owns: the views (solo and gossip-backed), routing each op to the node that serves it, the
task router, the gossip membership shell, the one multiplexed peer client and the
network-fault drill. Must not: decide shard placement (``ring/`` and
``replication/steward.py``) or serve an op (``api/``).
"""
