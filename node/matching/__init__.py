"""Matching: task queues and their partitions, long polls, sticky queues (DESIGN §3.3).

Owns: handing committed workflow and activity tasks to pollers. Must not: change workflow
state (a task's start goes back to its shard through the router).
"""
