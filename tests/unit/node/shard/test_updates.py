"""The node's waiting updates: who is woken when a worker accepts or settles an update."""

from __future__ import annotations

from shoal import wire
from shoal.node.shard.updates import Updates

KEY = ("default", "wf", "run-1")


def _request(uid: str) -> wire.UpdateRequest:
    return wire.UpdateRequest(update_id=uid, name="u")


def test_acceptance_wakes_accepted_waiters_but_not_completed_ones() -> None:
    updates = Updates()
    pending = updates.register(KEY, _request("a"), accepted=False)
    assert not pending.reached_accepted.is_set()
    updates.settle(KEY, ["a"], {})
    assert pending.accepted and pending.reached_accepted.is_set()
    assert not pending.done.is_set()
    assert updates.find(KEY, "a") is pending
    assert updates.unaccepted(KEY) == []  # accepted: no longer offered to workflow tasks


def test_a_rejection_settles_both_stages_and_forgets_the_update() -> None:
    updates = Updates()
    pending = updates.register(KEY, _request("r"), accepted=False)
    outcome = wire.UpdateOutcome(failure=wire.Failure(message="no"))
    updates.settle(KEY, [], {"r": outcome})
    assert pending.done.is_set() and pending.reached_accepted.is_set()
    assert pending.outcome == outcome
    assert updates.find(KEY, "r") is None


def test_registering_an_update_the_run_accepted_marks_it_accepted_at_once() -> None:
    updates = Updates()
    pending = updates.register(KEY, _request("x"), accepted=True)
    assert pending.reached_accepted.is_set()
    assert updates.register(KEY, _request("x"), accepted=False) is pending  # same id: same waiter
    assert updates.find(KEY, "y") is None
    assert updates.find(("default", "other", "run-1"), "x") is None
