"""Pure pieces of replication: quorum arithmetic, the log view, the membership policy."""

from __future__ import annotations

import pytest

from shoal import wire
from shoal.node.replication import SnapshotMeta, quorum
from shoal.node.replication.log import LogView
from shoal.node.replication.membership import next_config

E1, E2 = wire.Epoch(1, "a"), wire.Epoch(2, "b")


def _e(epoch: wire.Epoch, index: int, cfg: tuple[str, ...] | None = None) -> wire.ReplEntry:
    if cfg is None:
        return wire.ReplEntry(epoch=epoch, index=index, payload=index)
    return wire.ReplEntry(epoch=epoch, index=index, kind=wire.EntryKind.CONFIG,
                          config=wire.ShardConfig(voters=cfg))


@pytest.mark.parametrize("n,want", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_majority_is_more_than_half(n: int, want: int) -> None:
    assert quorum.majority(n) == want


@pytest.mark.parametrize("match,want", [
    ({"a": 5, "b": 3, "c": 1}, 3),
    ({"a": 5}, 0),  # b and c unknown count as 0
    ({"a": 5, "b": 5, "c": 5}, 5),
])
def test_committed_index_is_the_majority_th_highest(match: dict, want: int) -> None:
    assert quorum.committed_index(match, ("a", "b", "c")) == want


def test_committed_index_of_one_voter_is_its_own_match() -> None:
    assert quorum.committed_index({"a": 9}, ("a",)) == 9


def test_duplicate_append_changes_nothing() -> None:
    log = LogView()
    assert log.append([_e(E1, 1), _e(E1, 2)], floor=0) == [_e(E1, 1), _e(E1, 2)]
    assert log.append([_e(E1, 1), _e(E1, 2)], floor=0) == []
    assert log.last_index == 2


def test_conflicting_entry_cuts_the_tail_and_reverts_config() -> None:
    log = LogView()
    log.append([_e(E1, 1, ("a",)), _e(E1, 2), _e(E1, 3, ("a", "b"))], floor=0)
    assert log.config.voters == ("a", "b")
    assert log.append([_e(E2, 2)], floor=1) == [_e(E2, 2)]
    assert log.last_index == 2 and log.epoch_at(2) == E2
    assert log.config.voters == ("a",)


def test_cutting_a_committed_entry_is_a_bug() -> None:
    log = LogView()
    log.append([_e(E1, 1), _e(E1, 2)], floor=0)
    with pytest.raises(AssertionError):
        log.append([_e(E2, 2)], floor=2)


def test_compaction_keeps_epoch_and_config_of_the_base() -> None:
    log = LogView()
    log.append([_e(E1, 1, ("a",)), _e(E1, 2), _e(E2, 3), _e(E2, 4)], floor=0)
    log.compact(3)
    assert (log.snap_index, log.snap_epoch, log.first_index) == (3, E2, 4)
    assert log.epoch_at(2) is None and log.epoch_at(3) == E2
    assert log.config.voters == ("a",)
    assert log.slice(1, 10) == [_e(E2, 4)]


def test_restart_from_snapshot_and_tail() -> None:
    meta = SnapshotMeta(10, E1, wire.ShardConfig(voters=("a", "b", "c")))
    log = LogView(meta, [_e(E2, 11)])
    assert (log.first_index, log.last_index, log.last_epoch) == (11, 11, E2)
    assert log.config_at(10).voters == ("a", "b", "c")


def test_epoch_run_start_skips_a_whole_conflicting_epoch() -> None:
    log = LogView()
    log.append([_e(E1, 1), _e(E2, 2), _e(E2, 3), _e(E2, 4)], floor=0)
    assert log.first_index_of_epoch_run(4) == 2


def _cfg(voters: tuple[str, ...], learners: tuple[str, ...] = ()) -> wire.ShardConfig:
    return wire.ShardConfig(voters=voters, learners=learners)


def test_membership_adds_a_learner_first() -> None:
    assert next_config(_cfg(("a", "b", "c")), ("a", "b", "d"), "a", lambda n: False) == \
        _cfg(("a", "b", "c"), ("d",))


def test_membership_promotes_only_a_caught_up_learner() -> None:
    cfg = _cfg(("a", "b", "c"), ("d",))
    assert next_config(cfg, ("a", "b", "d"), "a", lambda n: False) is None
    assert next_config(cfg, ("a", "b", "d"), "a", lambda n: True) == _cfg(("a", "b", "c", "d"))


def test_membership_removes_others_before_the_leader() -> None:
    cfg = _cfg(("a", "b", "c", "d"))
    assert next_config(cfg, ("b", "d"), "a", lambda n: True) == _cfg(("a", "b", "d"))
    assert next_config(_cfg(("a", "b", "d")), ("b", "d"), "a", lambda n: True) == \
        _cfg(("b", "d"))


def test_membership_done_returns_none() -> None:
    assert next_config(_cfg(("a", "b")), ("b", "a"), "a", lambda n: True) is None
