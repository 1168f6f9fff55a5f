"""gossip/suspicion.py: timeout maths (memberlist's case tables) and confirmations."""

from __future__ import annotations

import pytest

from shoal.gossip.suspicion import (
    Suspicion, expected_confirmations, remaining_suspicion_time, suspicion_timeout,
)


@pytest.mark.parametrize("n, expected", [
    (5, 1.0), (10, 1.0), (50, 1.698), (100, 2.0), (500, 2.698), (1000, 3.0),
])
def test_suspicion_timeout_scales_with_log10_of_cluster_size(n: int, expected: float) -> None:
    assert suspicion_timeout(3, n, 1.0) / 3 == pytest.approx(expected)


def test_suspicion_timeout_is_never_below_one_log_unit() -> None:
    assert suspicion_timeout(4, 0, 0.5) == suspicion_timeout(4, 1, 0.5) == 2.0


@pytest.mark.parametrize("confirmations, k, elapsed, expected", [
    (0, 3, 0.0, 30.0),
    (1, 3, 2.0, 14.0),
    (2, 3, 3.0, 4.81),
    (3, 3, 4.0, -2.0),
    (4, 3, 5.0, -3.0),
    (5, 3, 10.0, -8.0),
])
def test_remaining_time_shrinks_logarithmically_with_confirmations(
        confirmations: int, k: int, elapsed: float, expected: float) -> None:
    assert remaining_suspicion_time(confirmations, k, elapsed, 2.0, 30.0) == pytest.approx(expected)


@pytest.mark.parametrize("mult, n, expected", [(4, 100, 2), (4, 3, 0), (4, 4, 2), (3, 10, 1),
                                               (1, 10, 0)])
def test_expected_confirmations_needs_enough_other_members(mult: int, n: int, expected: int) -> None:
    assert expected_confirmations(mult, n) == expected


def test_suspicion_starts_at_the_upper_bound() -> None:
    s = Suspicion("a", k=3, min_s=2.0, max_s=30.0, now=100.0)
    assert s.deadline == 130.0 and s.confirmations == 0


def test_suspicion_without_expected_confirmations_uses_the_lower_bound() -> None:
    assert Suspicion("a", k=0, min_s=2.0, max_s=30.0, now=10.0).deadline == 12.0


def test_confirmations_shrink_the_deadline_and_are_counted_once_per_member() -> None:
    s = Suspicion("a", k=3, min_s=2.0, max_s=30.0, now=0.0)
    assert not s.confirm("a", 1.0)  # the accuser is not an independent confirmation
    assert s.confirm("b", 2.0) and s.deadline == pytest.approx(16.0)
    assert not s.confirm("b", 2.5)
    assert s.confirm("c", 3.0) and s.deadline == pytest.approx(7.81)
    assert s.confirm("d", 4.0) and s.deadline == 4.0  # overdue: fire now
    assert not s.confirm("e", 5.0)  # k reached
    assert s.confirmations == 3


def test_accusers_are_kept_in_order_past_k_and_once_each() -> None:
    s = Suspicion("a", k=1, min_s=2.0, max_s=30.0, now=0.0)
    assert s.confirm("b", 1.0)
    assert not s.confirm("c", 2.0)  # past k: no longer shortens the timeout...
    assert not s.confirm("b", 3.0)
    assert s.accusers == ["a", "b", "c"]  # ...but c is still known to be suspecting
    assert s.confirmations == 1
