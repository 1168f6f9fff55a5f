"""One history shard on this node: the trio shell around the history engine.

Owns: per-workflow mailboxes and the state cache, turning engine transitions into one
committed log entry, the timer and transfer (outbox) processors, queries, updates and work
that spans two workflows (child runs, signals and cancels to other workflows). Must not:
decide workflow semantics (``history/``) or build keys by hand (``store/tables.py``).
"""
