"""Review finding (fixed): a write in lone-voter mode may carry an output that applies less
than an earlier output persisted; only the write as a whole must end fully applied.

Original report:
The new ``alone`` path of ReplicaStorage.durable_mutations (uncommitted diff) asserts
``self.applied >= self.last_stored`` per OUTPUT, but a batch may hold a proposal's persist
BEFORE an older output that only applies earlier entries.

Reachable: a sole-voter leader appends a config entry from the shortcut's on_persisted
(e.g. it removes its last learner / other voter), so that batch is not ``alone`` and the
post-write on_persisted(c) is fed; a proposal (entry c+1) arrived during the write and was
fed first. Next batch = [P: persist c+1, OP: apply ..c, shortcut: apply c+1] with
alone set -> the OP call sees applied=c < last_stored=c+1 -> AssertionError inside
_carry_out -> the replica is stopped (_stop) and every waiter gets UNAVAILABLE."""

from __future__ import annotations

from pathlib import Path

from shoal import wire
from shoal.store import tables
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage

SHARD = 5
E = wire.Epoch(1, "a")
ALONE = wire.ShardConfig(voters=("a",))


def _e(i: int) -> wire.ReplEntry:
    key = tables.enc_shard(SHARD) + b"k%d" % i
    return wire.ReplEntry(epoch=E, index=i, payload=tables.encode_mutations(
        [tables.Mutation(table=tables.HISTORY, key=key, value=b"v")]))


def test_an_alone_batch_may_apply_less_than_it_persists_before_its_last_output(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "n")
    try:
        st = ReplicaStorage(store, SHARD)
        # Previous (not alone) write stored entries 1..3; they are applied later.
        st.durable_mutations(hard_state=E, install=None, persist=[_e(1), _e(2), _e(3)],
                             compact=None, apply=[])
        batch = []
        batch += st.durable_mutations(hard_state=None, install=None, persist=[_e(4)],
                                      compact=None, apply=[], alone=ALONE)      # P
        batch += st.durable_mutations(hard_state=None, install=None, persist=[],
                                      compact=None, apply=[_e(1), _e(2), _e(3)],
                                      alone=ALONE)                             # OP
        batch += st.durable_mutations(hard_state=None, install=None, persist=[],
                                      compact=None, apply=[_e(4)], alone=ALONE)  # shortcut
    finally:
        store.close()
