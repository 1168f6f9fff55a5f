"""The client and worker API: the WebSocket server, its dispatcher and the op handlers.

Owns: connections and handshakes, request checks (sizes, ids, limits), and the handler
groups that serve each op by asking the shards, matching and visibility. Must not: hold
workflow semantics (``history/``) or decide where a request is served (``cluster/``).
"""
