"""Review finding (fixed): a cancelled ReplicaDriver (released, or node shutdown) must
finish the waiters of its proposals, which otherwise hang in a shielded wait.

Original report:
When a ReplicaDriver's run() is cancelled (ClusterReplicas._release cancels its scope;
node shutdown cancels everything), nothing finishes the waiters of proposals in flight.
ReplicaDriver.propose waits for them inside CancelScope(shield=True), so such a proposer
can never return, not even when its own caller is cancelled: a hung request, and a node
shutdown that never completes.

Here: leader a of {a, b, c} proposes while b and c are unreachable (nothing can commit),
then its driver is cancelled as _release would. The proposal's waiter is never finished.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from shoal import wire
from shoal.node.replication.driver import InProcessTransport, ReplicaDriver, ReplicatedShardLog
from shoal.node.replication import Replica, ReplicaConfig
from shoal.store import tables
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage
from shoal.store.writer import GroupCommitWriter

pytestmark = pytest.mark.timeout(30)
SHARD = 3


async def test_cancelling_a_driver_finishes_its_proposers_with_unavailable(tmp_path: Path) -> None:
    net = InProcessTransport()
    cfg = ReplicaConfig(leader_timeout_s=5.0)  # no check-quorum step-down in this test
    stores, drivers, scopes = {}, {}, {}
    async with trio.open_nursery() as nursery:
        for name in "abc":
            store = stores[name] = Store.open(tmp_path / name)
            writer = await nursery.start(_writer, store)
            storage = ReplicaStorage(store, SHARD)
            core = Replica(name, SHARD, cfg, random.Random(name), storage.persisted_state())
            d = drivers[name] = ReplicaDriver(core, storage, writer, net)
            net.register(d)
            scope = scopes[name] = trio.CancelScope()

            async def run(d=d, scope=scope, task_status=trio.TASK_STATUS_IGNORED) -> None:
                with scope:
                    await d.run(task_status=task_status)

            await nursery.start(run)
            d.feed(core.bootstrap(wire.ShardConfig(voters=("a", "b", "c"))))
        a = drivers["a"]
        a.feed(a.replica.campaign(trio.current_time()))
        with trio.fail_after(10):
            await a.wait_serving()
        net.down.update({"b", "c"})  # nothing more can commit

        outcome: list[object] = []

        async def proposer() -> None:
            key = tables.enc_shard(SHARD) + b"k"
            try:
                await ReplicatedShardLog(a).propose(
                    [tables.Mutation(table=tables.HISTORY, key=key, value=b"v")])
                outcome.append("ok")
            except Exception as exc:  # noqa: BLE001
                outcome.append(exc)

        caller = trio.CancelScope()

        async def caller_task() -> None:
            with caller:
                await proposer()

        nursery.start_soon(caller_task)
        await trio.sleep(0.2)
        assert a._proposals, "the proposal should be in flight"
        scopes["a"].cancel()  # what ClusterReplicas._release does
        caller.cancel()  # and the caller gives up too (client gone, or shutdown)
        await trio.sleep(0.5)
        hung = [w for w in a._proposals.values() if not w.done.is_set()]
        try:
            assert not hung and outcome, (
                "driver cancelled, proposer still blocked in its shielded wait forever: "
                f"{len(hung)} waiter(s) never finished")
        finally:
            for w in hung:  # let the test end
                w.finish(RuntimeError("released by the test"))
            nursery.cancel_scope.cancel()
    for s in stores.values():
        s.close()


async def _writer(store: Store, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with GroupCommitWriter.open(store) as w:
        task_status.started(w)
        await trio.sleep_forever()
