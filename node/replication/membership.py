"""The next single-node membership step towards the ring's replica set (DESIGN §4).

Owns: the pure policy "which one config change next": add a missing node as a learner,
promote a caught-up learner to voter, then remove a voter (others before the leader itself)
or a learner the target no longer names. One node at a time, so any majority of the old
config overlaps any majority of the new one (Ongaro's thesis §4.1). Must not: append
entries or decide when a change may start (the leader waits for the previous config entry
to commit and for its own no-op first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shoal import wire


def next_config(cfg: wire.ShardConfig, target: Sequence[str], me: str,
                caught_up: Callable[[str], bool]) -> wire.ShardConfig | None:
    """The config one step closer to ``target`` voters, or None when there is nothing to
    do yet (done, or waiting for a learner to catch up).

    Args:
        cfg: the membership in effect now (latest appended).
        target: the voters the ring wants, in ring order.
        me: the leader; it removes itself last, after the others.
        caught_up: whether a learner is close enough to be promoted.
    """
    voters, learners = cfg.voters, cfg.learners
    missing = [n for n in target if n not in voters and n not in learners]
    if missing:
        return wire.ShardConfig(voters=voters, learners=learners + (missing[0],))
    waiting = [n for n in learners if n in target]
    for n in waiting:
        if caught_up(n):
            return wire.ShardConfig(voters=voters + (n,),
                                    learners=tuple(x for x in learners if x != n))
    if waiting:
        return None  # add before remove: never shrink while a replacement is behind
    extra = [n for n in voters if n not in target]
    if extra and len(voters) > 1:
        victim = next((n for n in extra if n != me), extra[0])
        return wire.ShardConfig(voters=tuple(x for x in voters if x != victim),
                                learners=learners)
    stale = [n for n in learners if n not in target]
    if stale:
        return wire.ShardConfig(voters=voters, learners=tuple(x for x in learners
                                                               if x != stale[0]))
    return None
