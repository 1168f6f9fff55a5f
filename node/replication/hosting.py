"""This node's shard replicas in a cluster: hosted, campaigned, reconfigured and released
as the steward decides.

Owns: the drivers of the shards this node replicates (created on demand, empty for a
joiner: the leader adds it by snapshot and tail), the founder's bootstrap, the steward loop
(every ``interval_s`` and on membership changes), one ticker for every driver, and the
callbacks the history shell hangs on leadership (``on_serving``). Must not: decide (the
steward does) or speak the protocol (the cores do).

Which node bootstraps: only the founder of a new cluster (the node that created it, with
no ``--join``) starts every shard as a sole voter; a joiner never bootstraps, so two
different first entries can never exist for one shard (log matching, DESIGN §4).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable

import trio

from shoal import wire
from shoal.node.replication.driver import ReplicaDriver, ReplicaTransport
from shoal.node.replication import Replica, ReplicaConfig
from shoal.node.replication.types import NodeId
from shoal.node.replication.steward import Campaign, Host, Reconfigure, Release, ReplicaView, ShardSteward
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage, drop_replica_mutations
from shoal.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)


class ClusterReplicas:
    """Runs this node's part of every shard's replica group. ``nursery.start(c.run)``.

    Args:
        steward: decides what to do per shard.
        store, writer: this node's LMDB and its group-commit writer.
        transport: how replication messages reach other nodes (``register`` is called
            for each driver when the transport has one, e.g. ``InProcessTransport``).
        cfg: replica timing.
        interval_s: how often every shard is reconsidered.
        on_serving: called with (shard, serving) when this node starts or stops leading.
        clock: seconds, monotonic.
    """

    def __init__(self, steward: ShardSteward, store: Store, writer: GroupCommitWriter,
                 transport: ReplicaTransport, cfg: ReplicaConfig | None = None, *,
                 interval_s: float = 0.5,
                 on_serving: Callable[[int, bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.steward, self.store, self.writer, self.transport = steward, store, writer, transport
        self.cfg = cfg or ReplicaConfig()
        self.interval_s, self.clock = interval_s, clock
        self.on_serving = on_serving or (lambda shard, serving: None)
        self.me = steward.me
        self.drivers: dict[int, ReplicaDriver] = {}
        self._scopes: dict[int, trio.CancelScope] = {}
        self._stopping: dict[int, trio.Event] = {}  # set once a shard's driver task ended
        self._serving: dict[int, bool] = {}
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Event()
        self._serving_changed = trio.Event()
        self.replicas_dropped = 0  # replicas deleted from disk after their removal

    async def run(self, *, found: bool = False,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open every replica this node already has on disk (all shards when ``found``:
        bootstrapped as a sole voter if new), then steward until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for shard in range(self.steward.num_shards):
                storage = ReplicaStorage(self.store, shard)
                if storage.last_stored or found:
                    first = None if storage.last_stored else wire.ShardConfig(voters=(self.me,))
                    await self._start(shard, storage, bootstrap=first)
            nursery.start_soon(self._tick_all)
            task_status.started()
            while True:
                self.step()
                with trio.move_on_after(self.interval_s):
                    await self._changed.wait()
                self._changed = trio.Event()

    def set_members(self, alive: Iterable[NodeId], left: Iterable[NodeId] = ()) -> None:
        """Gossip's alive members (or those that left) changed: reconsider every shard now."""
        self.steward.set_members(alive, self.clock(), left)
        self._changed.set()

    def view(self, shard: int) -> ReplicaView | None:
        driver = self.drivers.get(shard)
        if driver is None:
            return None
        core = driver.replica
        config = core.config
        heard = core.leader_heard
        return ReplicaView(role=core.role, serving=driver.serving, leader=driver.leader,
                           voters=tuple(config.voters), learners=tuple(config.learners),
                           silent_s=0.0 if heard is None else max(0.0, self.clock() - heard),
                           removed=core.removed)

    def step(self) -> None:
        """Reconsider every shard once and carry the steward's actions out."""
        now = self.clock()
        for shard in range(self.steward.num_shards):
            driver = self.drivers.get(shard)
            if driver is not None:
                # The fallback campaign waits (1 + rank) leader timeouts: the ring's order.
                target = self.steward.target(shard, now)
                driver.replica.set_rank(target.index(self.me) if self.me in target
                                        else len(target))
            for action in self.steward.decide(shard, self.view(shard), now):
                self._do(action, now)
            self._note_serving(shard)

    def _do(self, action: object, now: float) -> None:
        if isinstance(action, Host):
            assert self._nursery is not None
            self._nursery.start_soon(self._start, action.shard, None)
        elif isinstance(action, Campaign):
            driver = self.drivers[action.shard]
            driver.feed(driver.replica.campaign(now))
        elif isinstance(action, Reconfigure):
            driver = self.drivers[action.shard]
            driver.feed(driver.replica.reconfigure(action.voters, now))
        elif isinstance(action, Release):
            self._release(action.shard, drop_data=action.drop_data)

    async def _start(self, shard: int, storage: ReplicaStorage | None,
                     bootstrap: wire.ShardConfig | None = None) -> ReplicaDriver:
        if shard in self.drivers:
            return self.drivers[shard]
        gone = self._stopping.get(shard)
        if gone is not None:
            # A released driver may still finish a shielded write: read the disk after it.
            await gone.wait()
            if shard in self.drivers:
                return self.drivers[shard]
        storage = storage or ReplicaStorage(self.store, shard)
        core = Replica(self.me, shard, self.cfg, random.Random(f"{self.me}/{shard}"),
                       storage.persisted_state())
        driver = ReplicaDriver(core, storage, self.writer, self.transport, self.clock,
                               own_ticker=False)
        self.drivers[shard] = driver
        driver.on_serving_changed = lambda: self._note_serving(shard)
        if bootstrap is not None:
            # Before any peer can reach it: a message first would make the log non-empty.
            driver.feed(core.bootstrap(bootstrap))
        register = getattr(self.transport, "register", None)
        if register is not None:
            register(driver)
        scope = trio.CancelScope()
        self._scopes[shard] = scope
        stopped = self._stopping[shard] = trio.Event()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await driver.run(task_status=task_status)
            finally:
                stopped.set()

        assert self._nursery is not None
        await self._nursery.start(run)
        log.debug("replica hosted shard=%d node=%s", shard, self.me)
        return driver

    def _release(self, shard: int, *, drop_data: bool = False) -> None:
        driver = self.drivers.pop(shard, None)
        scope = self._scopes.pop(shard, None)
        if scope is not None:
            scope.cancel()
        if driver is not None:
            log.info("replica released shard=%d node=%s drop_data=%s", shard, self.me,
                     drop_data)
        if driver is not None and drop_data:
            # Hosting the shard again waits for the delete (``_start`` waits on this).
            stopped = self._stopping.get(shard)
            dropped = self._stopping[shard] = trio.Event()
            assert self._nursery is not None
            self._nursery.start_soon(self._drop_data, shard, stopped, dropped)
        self._note_serving(shard)

    async def _drop_data(self, shard: int, stopped: trio.Event | None,
                         dropped: trio.Event) -> None:
        try:
            if stopped is not None:
                await stopped.wait()  # its last shielded write has landed
            await self.writer.commit(drop_replica_mutations(self.store, shard))
            self.replicas_dropped += 1
        finally:
            dropped.set()

    def _note_serving(self, shard: int) -> None:
        driver = self.drivers.get(shard)
        # Served only once everything committed is applied here too: the history shell
        # reads its state from the tables when it takes over. Once serving, a commit not yet
        # applied is the leader's own write in flight, not a reason to stop serving.
        serving = (driver is not None and driver.serving and driver.failed is None
                   and (self._serving.get(shard, False)
                        or driver.storage.applied >= driver.replica.commit))
        if self._serving.get(shard, False) != serving:
            self._serving[shard] = serving
            self.on_serving(shard, serving)
            self._serving_changed.set()
            self._serving_changed = trio.Event()

    async def _tick_all(self) -> None:
        interval = self.cfg.heartbeat_interval_s / 2
        while True:
            await trio.sleep(interval)
            for driver in list(self.drivers.values()):
                driver.tick()
                # Leadership changes show up here within a tick, not a steward interval.
            for shard in list(self.drivers):
                self._note_serving(shard)

    async def wait_serving(self, shards: Iterable[int]) -> None:
        """Wait until this node serves every one of ``shards``."""
        for shard in shards:
            while not self.serving(shard):
                await self._serving_changed.wait()

    def serving(self, shard: int) -> bool:
        """This node leads ``shard`` and its history shell has been told so."""
        return self._serving.get(shard, False)

    def leader_of(self, shard: int) -> NodeId | None:
        """Who leads ``shard`` as far as this node knows (None: nobody known)."""
        driver = self.drivers.get(shard)
        if driver is None or driver.failed is not None:
            return None
        return self.me if driver.serving else driver.leader
