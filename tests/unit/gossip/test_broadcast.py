"""gossip/broadcast.py: retransmit limit, invalidation, ordering and packing."""

from __future__ import annotations

import pytest

from shoal.gossip.broadcast import BroadcastQueue, retransmit_limit


@pytest.mark.parametrize("mult, n, expected", [(3, 0, 0), (3, 1, 3), (3, 99, 6), (4, 100, 12),
                                               (4, 9, 4), (4, 10, 8)])
def test_retransmit_limit_is_mult_times_ceil_log10_n_plus_one(mult: int, n: int, expected: int) -> None:
    assert retransmit_limit(mult, n) == expected


def test_newer_update_about_a_member_replaces_the_queued_one() -> None:
    q = BroadcastQueue()
    q.queue("a", "suspect a", 10)
    q.queue("a", "alive a", 10)
    assert len(q) == 1 and q.pending("a") == "alive a"


def test_each_update_is_sent_at_most_limit_times() -> None:
    q = BroadcastQueue()
    q.queue("a", "x", 10)
    sent = [q.take(100, limit=3)[0] for _ in range(5)]
    assert sent == [["x"], ["x"], ["x"], [], []]
    assert len(q) == 0


def test_least_transmitted_updates_go_first() -> None:
    q = BroadcastQueue()
    q.queue("old", "old", 10)
    q.take(100, limit=5)
    q.queue("new", "new", 10)
    assert q.take(10, limit=5) == (["new"], 10)


def test_take_packs_what_fits_and_skips_what_does_not() -> None:
    q = BroadcastQueue()
    q.queue("big", "big", 80)
    q.queue("mid", "mid", 30)
    q.queue("small", "small", 15)
    msgs, used = q.take(50, limit=5)
    assert msgs == ["mid", "small"] and used == 45
    assert q.take(0, limit=5) == ([], 0)
