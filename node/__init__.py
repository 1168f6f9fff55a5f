"""The node: one shoal process, a peer among identical peers (DESIGN §3).

``node.py`` is the composition root: it builds the store, the subpackages' objects and the
trio tasks that run them. Everything else lives in a subpackage by concern:

- ``api/``: the WebSocket endpoint, request checks and the handler groups per op.
- ``shard/``: one history shard's shell (mailboxes, commit, after-commit effects), its timer
  and transfer processors, queries, updates and cross-workflow work.
- ``history/``: the sans-IO history engine and the workflow records it owns.
- ``matching/``: task queues, long polls, sticky queues.
- ``visibility/``: the list filter and list/count/scan over shards.
- ``replication/``: the per-shard consensus core and its trio driver, transport, hosting,
  steward and replica storage.
- ``cluster/``: the views of the cluster, the request and task routers, the gossip
  membership shell, the one peer client and the network-fault drill.

Must not: import ``shoal.sdk`` or ``shoal.cli`` (tests/unit/test_layering.py enforces it).
"""
