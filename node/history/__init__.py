"""The history engine: a sans-IO state machine per workflow execution (DESIGN §3.2).

Owns: how a request (start, task started/completed/failed, timer fired, terminate) changes
one run's mutable state and which history events and outbox tasks it produces. Must not: do
I/O, read a clock, make ids or random numbers, or import trio; the shell (``node/shard/shard.py``)
loads the state, calls ``engine.HistoryEngine`` and commits what it returns as one entry.
"""
