"""The trio driver of one shard replica: carries out what the consensus core asks, in order.

Owns: feeding the core (peer messages, ticks, proposals) and carrying out its ``Output`` as
``types.Output`` prescribes: make the durable parts and the applied entries durable in one
group-commit write, only then send messages, then report persisted/applied back to the
core, answer proposals and reads, and stream snapshots to members too far behind. Also
``ReplicatedShardLog`` (the ``ShardLog`` the history shell writes through) and
``InProcessTransport`` (replicas of several nodes in one process: tests and the bench).
Must not: make protocol decisions (``node/replication/`` does) or touch tables directly
(``node/replication/storage.py`` builds every write).

Batching: outputs that pile up while a write is in flight are carried out together, in
order, as one write; with the writer's group commit, one fsync covers many entries of many
shards. Snapshots travel as bounded ``SnapshotChunk`` messages ahead of the core's
``InstallSnapshot``, which names how many chunks make it; a member installs only a complete
set (a lost chunk makes the leader send the whole snapshot again after its timeout).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from shoal import wire
from shoal.node.replication import Replica
from shoal.node.replication.types import NodeId, Output, Role
from shoal.store import tables
from shoal.node.replication.storage import ReplicaStorage
from shoal.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)


class ReplicaTransport(Protocol):
    """Best-effort, per-pair FIFO delivery of replication messages to other nodes."""

    def send(self, src: NodeId, dst: NodeId, msg: wire.ReplMessage) -> None:
        """Queue ``msg`` for ``dst``; never blocks, may drop."""
        ...


@dataclass(eq=False, slots=True)
class _Waiter:
    """A proposal (or read) waiting for its outcome."""

    epoch: wire.Epoch
    index: int = 0
    done: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


@dataclass(slots=True)
class DriverStats:
    writes: int = 0  # group-commit writes this replica asked for
    outputs: int = 0  # core outputs carried out
    dropped_messages: int = 0  # peer messages the driver refused (bad shape, stale chunk)
    snapshots_sent: int = 0
    snapshots_installed: int = 0


class ReplicaDriver:
    """Runs one shard's :class:`Replica` on this node. Start it with ``nursery.start(d.run)``.

    Args:
        replica: the core, rebuilt from ``storage.persisted_state()``.
        storage: the replica's LMDB side.
        writer: the node's group-commit writer (shared by every shard).
        transport: how messages reach other nodes.
        clock: seconds, monotonic; the core's ``now``.
    """

    def __init__(self, replica: Replica, storage: ReplicaStorage, writer: GroupCommitWriter,
                 transport: ReplicaTransport, clock: Callable[[], float] = time.monotonic,
                 *, own_ticker: bool = True) -> None:
        self.own_ticker = own_ticker  # False: its owner ticks it (ClusterReplicas ticks all)
        self.replica, self.storage, self.writer = replica, storage, writer
        self.transport, self.clock = transport, clock
        self.me, self.shard = replica.me, replica.shard
        self.stats = DriverStats()
        self.failed: BaseException | None = None
        self._pending: list[Output] = []
        self._kick = trio.Event()
        self._proposals: dict[int, _Waiter] = {}
        # Mutations of our own proposals by index: applied without decoding the payload.
        self._proposed: dict[int, tuple[wire.Epoch, list[tables.Mutation]]] = {}
        self._reads: list[_Waiter] = []
        self._chunks: dict[tuple[NodeId, int], list[bytes]] = {}
        self.role = replica.role
        self.serving = False
        self.leader: NodeId | None = None
        self._serving_changed = trio.Event()
        self._alone_cache: bool | None = None
        # Called as soon as ``serving`` flips (the owner tells the history shell at once).
        self.on_serving_changed: Callable[[], None] = lambda: None

    # --- inputs ----------------------------------------------------------------------------

    def feed(self, out: Output) -> None:
        """Queue a core output to be carried out (the loop wakes up)."""
        if not out.empty():
            self._pending.append(out)
            self._kick.set()

    def deliver(self, src: NodeId, msg: wire.ReplMessage) -> None:
        """A message from ``src``. Never raises: bad input is counted and dropped."""
        if self.failed is not None:
            return
        try:
            if isinstance(msg, wire.SnapshotChunk):
                self._on_chunk(src, msg)
                return
            if isinstance(msg, wire.InstallSnapshot):
                msg = self._assemble(src, msg)
                if msg is None:
                    return
            self.feed(self.replica.on_message(src, msg, self.clock()))
        except Exception:  # noqa: BLE001 - a peer's message must never take the node down
            self.stats.dropped_messages += 1
            log.exception("replication message refused shard=%d src=%s", self.shard, src)

    async def propose(self, payload: bytes,
                      mutations: list[tables.Mutation] | None = None) -> int:
        """Append ``payload``; return its index once it is committed and applied here.

        The wait is shielded: once proposed, the outcome is decided by the group, not by a
        cancelled caller.

        Raises:
            ShoalError: NOT_LEADER (not a serving leader, or the entry was replaced by a new
                leader's: it did not commit); UNAVAILABLE (leadership lost while waiting: the
                outcome is unknown; retry idempotently).
        """
        self._check_alive()
        index, out = self.replica.propose(payload, self.clock())
        waiter = _Waiter(self.replica.epoch, index)
        self._proposals[index] = waiter
        if mutations is not None:
            self._proposed[index] = (self.replica.epoch, mutations)
        self.feed(out)
        with trio.CancelScope(shield=True):
            await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return index

    async def read_barrier(self) -> None:
        """Return once this leader's state is confirmed current by a quorum (a linearizable
        read may then be served from local tables).

        Raises:
            ShoalError: NOT_LEADER, or UNAVAILABLE when the quorum could not confirm.
        """
        self._check_alive()
        waiter = _Waiter(self.replica.epoch)
        self.feed(self.replica.read(waiter, self.clock()))
        self._reads.append(waiter)
        await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error

    async def wait_serving(self) -> None:
        """Wait until this replica is a serving leader."""
        while not self.serving:
            await self._serving_changed.wait()

    # --- the loop --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Carry out outputs and tick the core until cancelled (or a write fails)."""
        async with trio.open_nursery() as nursery:
            if self.own_ticker:
                nursery.start_soon(self._ticker)
            task_status.started()
            try:
                while self.failed is None:
                    if not self._pending:
                        await self._kick.wait()
                        self._kick = trio.Event()
                        continue
                    outs, self._pending = self._pending, []
                    await self._carry_out(outs)
            except Exception as exc:
                self._stop(exc)
            finally:
                nursery.cancel_scope.cancel()
                # Stopped (released, or the node shuts down): nobody will carry out what is
                # queued, so no proposer or reader may wait for it.
                if self.failed is None:
                    self._fail(wire.ShoalError(wire.Code.UNAVAILABLE,
                                               f"shard {self.shard}'s replica here stopped"))

    def _stop(self, exc: BaseException) -> None:
        # The tracked storage state already moved on: this replica cannot continue
        # consistently. Stop it (the node and other shards go on) and say why.
        self._fail(exc)
        self._kick.set()
        log.error("replica stopped shard=%d node=%s: %r", self.shard, self.me, exc, exc_info=exc)

    async def _ticker(self) -> None:
        interval = self.replica.cfg.heartbeat_interval_s / 2
        while True:
            await trio.sleep(interval)
            self.tick()

    def tick(self) -> None:
        """Let time pass for the core (heartbeats, timeouts) unless it has nobody to talk to."""
        if self.failed is None and not self._alone():
            self.feed(self.replica.tick(self.clock()))

    def _alone(self) -> bool:
        # A serving sole voter with no learners: no heartbeat to send, no timeout to watch.
        # Cached (ticks ask it for every shard many times a second); outputs that may
        # change it (role events, new entries, installs) clear the cache.
        if self._alone_cache is None:
            config = self.replica.config
            self._alone_cache = (self.serving and config.voters == (self.me,)
                                 and not config.learners)
        return self._alone_cache

    async def _carry_out(self, outs: list[Output]) -> None:
        split = next((i for i, o in enumerate(outs) if i and o.install is not None), None)
        if split is not None:
            # An install replaces state it reads from disk: what earlier outputs of this
            # batch would put must be on disk first, so the install starts a write of its own.
            await self._carry_out(outs[:split])
            await self._carry_out(outs[split:])
            return
        self.stats.outputs += len(outs)
        reported, alone = self._commit_alone(outs, self.clock())
        await self._write(outs, alone)  # 1. everything durable and applied, in one write
        now = self.clock()
        last_applied = self._after_write(outs, now)
        last_persisted = next((o.persist[-1] for o in reversed(outs) if o.persist), None)
        if last_persisted is not None and last_persisted is not reported:
            self.feed(self.replica.on_persisted(last_persisted.epoch, last_persisted.index, now))
        if last_applied:
            self.feed(self.replica.on_applied(last_applied, now))
            if self.serving:
                self.on_serving_changed()  # the owner may have waited for this apply

    def _commit_alone(self, outs: list[Output], now: float
                      ) -> tuple[wire.ReplEntry | None, wire.ShardConfig | None]:
        """A sole voter commits what it persists: tell the core now, so the entries are
        applied in the SAME transaction that persists them (one fsync, not two). Safe
        because that transaction is atomic, and a failed write stops this replica. What the
        core answers is appended to ``outs`` (e.g. a next config step, reported later).

        Returns the entry reported persisted (None: nothing was) and the config when all
        of it is applied in this write (no entry rows needed)."""
        last_persisted = next((o.persist[-1] for o in reversed(outs) if o.persist), None)
        if last_persisted is None or not self._commits_alone():
            return None, None
        outs.append(self.replica.on_persisted(last_persisted.epoch, last_persisted.index, now))
        config = self.replica.config
        alone = config if not config.learners and not outs[-1].persist else None
        return last_persisted, alone

    async def _write(self, outs: list[Output], alone: wire.ShardConfig | None) -> None:
        mutations: list[tables.Mutation] = []
        for out in outs:
            mutations.extend(self.storage.durable_mutations(
                hard_state=out.hard_state, install=out.install, persist=out.persist,
                compact=out.compact, apply=out.apply, proposed=self._proposed, alone=alone))
        if alone is not None and self.storage.applied < self.storage.last_stored:
            raise AssertionError(  # a lone write that would leave entries unstored: a bug
                f"shard {self.shard}: alone write ends applied {self.storage.applied} < "
                f"persisted {self.storage.last_stored}")
        if mutations:
            self.stats.writes += 1
            await self.writer.commit(mutations)

    def _after_write(self, outs: list[Output], now: float) -> int:
        """Steps 2-4 once the write is durable; returns the last index applied (0: none)."""
        last_applied = 0
        if any(o.events or o.install or any(e.kind == wire.EntryKind.CONFIG for e in o.persist)
               for o in outs):
            self._alone_cache = None
        for out in outs:
            # 2. Only now may messages leave (no promise or ack outruns the disk).
            for dst, msg in out.send:
                self.transport.send(self.me, dst, msg)
            if out.install is not None:
                self.stats.snapshots_installed += 1
            # 3. Applied: answer proposals and reads.
            for e in out.apply:
                self._settle_proposal(e)
                last_applied = e.index
            for ready in out.reads:
                ready.ctx.finish()
            for ctx in out.read_failures:
                ctx.finish(wire.ShoalError(wire.Code.UNAVAILABLE,
                                           f"shard {self.shard}: a quorum did not confirm the read"))
            if out.reads or out.read_failures:
                self._reads = [w for w in self._reads if not w.done.is_set()]
            for ev in out.events:
                self._on_role(ev)
            # 4. Snapshots of the (now durable) applied state.
            for peer in out.snapshot_to:
                self._send_snapshot(peer, now)
        return last_applied

    # --- helpers ---------------------------------------------------------------------------

    def _commits_alone(self) -> bool:
        """This replica is the leader and the only voter: its own persistence commits."""
        return self.replica.role is Role.LEADER and self.replica.config.voters == (self.me,)

    def _settle_proposal(self, e: wire.ReplEntry) -> None:
        waiter = self._proposals.pop(e.index, None)
        if waiter is None:
            return
        if e.epoch == waiter.epoch and e.kind == wire.EntryKind.NORMAL:
            waiter.finish()
        else:
            waiter.finish(wire.ShoalError(
                wire.Code.NOT_LEADER,
                f"shard {self.shard}: entry {e.index} went to a newer leader; not committed",
                leader=self.leader))

    def _on_role(self, ev: Any) -> None:
        self.role, self.leader = ev.role, ev.leader
        if self.serving != ev.serving:
            self.serving = ev.serving
            self._serving_changed.set()
            self._serving_changed = trio.Event()
            self.on_serving_changed()
        if ev.role is not Role.LEADER:
            err = wire.ShoalError(
                wire.Code.UNAVAILABLE,
                f"shard {self.shard}: leadership moved to {ev.leader or 'nobody yet'} while the "
                "write was in flight; it may or may not have committed", leader=ev.leader)
            for waiter in self._proposals.values():
                waiter.finish(err)
            self._proposals.clear()
            self._proposed.clear()
            for waiter in self._reads:
                waiter.finish(err)
            self._reads.clear()
        self._reads = [w for w in self._reads if not w.done.is_set()]

    def _send_snapshot(self, peer: NodeId, now: float) -> None:
        index = self.storage.applied
        chunks = self.storage.snapshot_chunks()
        for seq, rows in enumerate(chunks):
            self.transport.send(self.me, peer, wire.SnapshotChunk(
                shard=self.shard, epoch=self.replica.epoch, index=index, seq=seq, rows=rows))
        self.stats.snapshots_sent += 1
        self.feed(self.replica.send_snapshot(peer, index, {"chunks": len(chunks)}, now))

    def _on_chunk(self, src: NodeId, chunk: wire.SnapshotChunk) -> None:
        key = (src, chunk.index)
        if chunk.seq == 0:
            # A new stream from this leader supersedes any older partial one.
            self._chunks = {k: v for k, v in self._chunks.items() if k[0] != src}
            self._chunks[key] = []
        got = self._chunks.get(key)
        if got is None or chunk.seq != len(got):
            self.stats.dropped_messages += 1  # out of order or a stream we never started
            self._chunks.pop(key, None)
            return
        got.append(chunk.rows)

    def _assemble(self, src: NodeId, msg: wire.InstallSnapshot) -> wire.InstallSnapshot | None:
        want = msg.data.get("chunks") if isinstance(msg.data, dict) else None
        got = self._chunks.pop((src, msg.index), None)
        if not isinstance(want, int) or got is None or len(got) != want:
            self.stats.dropped_messages += 1  # incomplete: the leader will send it again
            return None
        rows = [m for chunk in got for m in tables.decode_mutations(chunk)]
        if any(m.value is None or m.table not in tables.SHARD_STATE_MACHINE_TABLES
               or not m.key.startswith(tables.enc_shard(self.shard)) for m in rows):
            raise wire.WireError(wire.Code.MALFORMED,
                                 f"snapshot rows outside shard {self.shard}'s state")
        return dataclasses.replace(msg, data=rows)

    def _check_alive(self) -> None:
        if self.failed is not None:
            raise wire.ShoalError(wire.Code.UNAVAILABLE,
                                  f"shard {self.shard}'s replica stopped: {self.failed}")

    def _fail(self, exc: BaseException) -> None:
        self.failed = exc
        err = wire.ShoalError(wire.Code.UNAVAILABLE,
                              f"shard {self.shard}'s replica stopped: {exc}")
        for waiter in [*self._proposals.values(), *self._reads]:
            waiter.finish(err)
        self._proposals.clear()
        self._reads.clear()


class NullTransport:
    """A single node's transport: there is nobody to send to."""

    def send(self, src: NodeId, dst: NodeId, msg: wire.ReplMessage) -> None:
        return None


class ReplicatedShardLog:
    """The :class:`~shoal.store.shardlog.ShardLog` of a replicated shard (this node leads)."""

    def __init__(self, driver: ReplicaDriver) -> None:
        self.driver = driver
        self.shard = driver.shard

    @property
    def applied_index(self) -> int:
        return self.driver.storage.applied

    async def read_barrier(self) -> None:
        """Return once a quorum confirms this node still leads (a current read may follow).

        Raises:
            ShoalError: NOT_LEADER or UNAVAILABLE (see :meth:`ReplicaDriver.read_barrier`).
        """
        await self.driver.read_barrier()

    async def propose(self, mutations: list[tables.Mutation]) -> int:
        """Commit ``mutations`` through the group; return the entry's index once applied here.

        Raises:
            ShoalError: INVALID_ARGUMENT (a malformed mutation, refused up front),
                NOT_LEADER, UNAVAILABLE (see :meth:`ReplicaDriver.propose`).
        """
        for m in mutations:
            tables.check_mutation(m)
        return await self.driver.propose(tables.encode_mutations(mutations), list(mutations))


class InProcessTransport:
    """Replicas of several nodes in one process (tests, the bench), through the wire codec.

    Every message is encoded and decoded as it would be between processes. ``down`` nodes
    and ``cut`` links drop messages both ways.
    """

    def __init__(self) -> None:
        self.drivers: dict[tuple[NodeId, int], ReplicaDriver] = {}
        self.down: set[NodeId] = set()
        self.cut: set[frozenset[NodeId]] = set()
        self.sent = 0
        self.bytes = 0

    def register(self, driver: ReplicaDriver) -> None:
        self.drivers[(driver.me, driver.shard)] = driver

    def send(self, src: NodeId, dst: NodeId, msg: wire.ReplMessage) -> None:
        if src in self.down or dst in self.down or frozenset((src, dst)) in self.cut:
            return
        driver = self.drivers.get((dst, msg.shard))
        if driver is None:
            return
        frame = wire.encode_repl(msg)
        self.sent += 1
        self.bytes += len(frame)
        driver.deliver(src, wire.decode_repl(frame))
