"""One whole simulated node of ``sim/cluster_sim.py``: gossip, steward, shard replicas, disk.

Owns: a node's SWIM core (its alive-members view feeds the steward), its
:class:`~shoal.node.replication.steward.ShardSteward` and the replicas the steward decides to host,
campaign, reconfigure and release (the same steps as ``node/replication/hosting.py``'s
``step()`` and ``_do()``, including the fallback rank from the ring's order), the per-shard
durable state (:class:`~shoal.sim.replication_node.SimDisk`, one per shard, kept across
crashes and releases as the real store keeps a shard's key range; its ``applied_state``
holds a :class:`~shoal.sim.cluster_history.ShardState` here), and the applied
:class:`~shoal.sim.cluster_history.ShardState` of every hosted shard. The driver part
carries each replica :class:`~shoal.node.replication.Output` out in the order its
docstring prescribes; writes become durable only when their simulated fsync (a node timer,
so a crash discards it and a pause delays it) fires.

Must not: check invariants or talk to clients (it reports applies, role changes,
snapshots and crashes to :class:`NodeHooks`, the simulator), read the wall clock, use
global random or iterate sets.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import Output as GossipOutput
from shoal.gossip.swim import Swim
from shoal.node.replication import Output, PersistedState, Replica, ReplicaConfig, RoleChanged
from shoal.node.replication.steward import Campaign, Host, Reconfigure, Release, ReplicaView, ShardSteward
from shoal.sim.cluster_history import ShardState
from shoal.sim.network import Network
from shoal.sim.replication_node import SimDisk

GOSSIP_TYPES = (wire.GossipPacket, wire.PushPullRequest, wire.PushPullResponse)
LEADER_MESSAGES = (wire.Append, wire.InstallSnapshot)  # sent only by a shard's leader
TICK = "tick"  # one ticker drives every replica of the node (as ClusterReplicas._tick_all)
STEWARD = "steward"


class NodeHooks(Protocol):
    """What a node tells the simulator (which checks invariants and answers clients)."""

    def on_apply(self, node: str, shard: int, entry: wire.ReplEntry, prev_index: int,
                 state: ShardState) -> None: ...

    def on_role(self, node: str, shard: int, ev: RoleChanged) -> None: ...

    def on_leader_send(self, node: str, boot: int, shard: int, epoch: wire.Epoch) -> None: ...

    def on_install(self, node: str, shard: int, state: ShardState) -> None: ...

    def on_released(self, node: str, shard: int) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeTiming:
    """Timing shared by every node of one run (seconds of simulated time)."""

    fsync_s: float = 0.003  # a write takes uniform [fsync_s / 3, fsync_s]
    steward_interval_s: float = 0.5  # ClusterReplicas' interval_s
    replace_after_s: float = 5.0


@dataclass(slots=True)
class HostedShard:
    """A replica this node runs: its core and its applied state machine."""

    core: Replica
    state: ShardState
    writes_in_flight: int = 0
    # Messages to send once the newest write in flight is durable: the real driver carries
    # outputs out one after another, so a message never overtakes an earlier output's write
    # (a heartbeat must not leave before the promise it is sent under is on disk).
    sends_after_write: list[tuple[str, Any]] = field(default_factory=list)


class ClusterNode:
    """A node: up or down; while down only its disks exist.

    Args:
        name: node id (also its gossip address).
        num_shards, rf: the cluster's NUM_SHARDS and replication factor.
        net: the shared fake network and clock.
        hooks: the simulator.
        rng: this node's randomness (cores get their own from it).
        swim_cfg, replica_cfg, timing: protocol settings.
    """

    def __init__(self, name: str, num_shards: int, rf: int, net: Network, hooks: NodeHooks,
                 rng: random.Random, swim_cfg: SwimConfig, replica_cfg: ReplicaConfig,
                 timing: NodeTiming) -> None:
        self.name, self.num_shards, self.rf = name, num_shards, rf
        self.net, self.hooks, self.rng = net, hooks, rng
        self.swim_cfg, self.replica_cfg, self.timing = swim_cfg, replica_cfg, timing
        self.up = False
        self.boots = 0  # starts so far: tells the lives of one node apart
        self.swim: Swim | None = None
        self.steward: ShardSteward | None = None
        self.shards: dict[int, HostedShard] = {}
        self.disks: dict[int, SimDisk] = {}
        self._writes: dict[int, tuple[int, Callable[[], None]]] = {}  # seq -> (shard, done)
        self._drop: set[int] = set()  # released shards whose data goes once writes land
        self.replicas_dropped = 0
        self._write_seq = 0
        self._disk_busy = 0.0
        self._alive: tuple[str, ...] = ()
        self.apply_twice = False  # planted bug: apply the next client entry twice
        self.dedupe = True  # False plants a bug in the state machine
        self.gossip_sent = 0  # messages sent, by protocol (counted even when lost)
        self.repl_sent = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, seeds: list[str], *, found: bool) -> None:
        """Boot: open every shard with data on disk (all of them, bootstrapped as a sole
        voter, when ``found``: the node that creates the cluster), then join gossip."""
        assert not self.up
        now = self.net.now
        self.up = True
        self.boots += 1
        self.net.restart(self.name)
        meta = wire.MemberMeta(api_addr=f"ws://{self.name}:7350", cluster_name="sim",
                               num_shards=self.num_shards)
        self.swim = Swim(self.name, self.swim_cfg, random.Random(self.rng.getrandbits(64)), meta)
        self.steward = ShardSteward(self.name, self.num_shards, replication_factor=self.rf,
                                    replace_after_s=self.timing.replace_after_s)
        self._alive = (self.name,)
        for shard in range(self.num_shards):
            disk = self.disks.get(shard)
            if (disk is not None and disk.last) or found:
                self._host(shard)
                if found and not (disk is not None and disk.last):
                    self.drive(shard, self.shards[shard].core.bootstrap(
                        wire.ShardConfig(voters=(self.name,))))
        self._gossip(self.swim.join(seeds, now))
        self.net.set_timer(self.name, TICK, now + self.rng.random() * 0.025)
        self.net.set_timer(self.name, STEWARD, now)

    def crash(self) -> None:
        """Stop: everything not yet fsynced is lost; the disks stay."""
        assert self.up
        self.up = False
        self.net.crash(self.name)
        self.swim = self.steward = None
        self.shards.clear()
        self._writes.clear()
        self._drop.clear()  # not done yet: the data stays, as a crash before the delete
        self._disk_busy = 0.0

    # --- inputs ---------------------------------------------------------------------------

    def on_message(self, src: str, msg: Any, reliable: bool) -> None:
        assert self.up and self.swim is not None
        now = self.net.now
        if isinstance(msg, GOSSIP_TYPES):
            self._gossip(self.swim.on_message(src, msg, now, stream=reliable))
            return
        hosted = self.shards.get(msg.shard)
        if hosted is not None:  # unknown shards are dropped, as ReplicaTransport does
            self.drive(msg.shard, hosted.core.on_message(src, msg, now))

    def on_timer(self, key: Any) -> None:
        assert self.up and self.swim is not None
        now = self.net.now
        if key == TICK:
            for shard in list(self.shards):
                hosted = self.shards.get(shard)
                if hosted is not None:
                    self.drive(shard, hosted.core.tick(now))
            self.net.set_timer(self.name, TICK, now + self.replica_cfg.heartbeat_interval_s / 2)
        elif key == STEWARD:
            self.steward_step()
            self.net.set_timer(self.name, STEWARD, now + self.timing.steward_interval_s)
        elif key[0] == "swim":
            self._gossip(self.swim.on_timer(key[1], now))
        elif key[0] == "fsync":
            shard, done = self._writes.pop(key[1])
            done()
            self._drop_if_idle(shard)
        else:
            raise AssertionError(f"unknown timer {key!r}")

    # --- gossip -> steward -------------------------------------------------------------------

    def _gossip(self, out: GossipOutput) -> None:
        for addr, pkt in out.send:
            self.net.send(self.name, addr, pkt)
        for addr, msg in out.stream:
            self.net.send(self.name, addr, msg, reliable=True)
        self.gossip_sent += len(out.send) + len(out.stream)
        for key, at in out.timers:
            self.net.set_timer(self.name, ("swim", key), at)
        if out.events:
            assert self.swim is not None and self.steward is not None
            alive = tuple(m.name for m in self.swim.alive_members())
            if alive != self._alive:
                # ClusterReplicas.set_members: reconsider every shard at once.
                self._alive = alive
                self.steward.set_members(alive, self.net.now)
                self.steward_step()

    def alive_view(self) -> tuple[str, ...]:
        """The members this node's gossip says are alive (itself included)."""
        return self._alive

    def steward_step(self) -> None:
        """``ClusterReplicas.step``: reconsider every shard and carry the actions out."""
        steward = self.steward
        assert steward is not None
        now = self.net.now
        for shard in range(self.num_shards):
            hosted = self.shards.get(shard)
            if hosted is not None:
                # The fallback campaign waits (1 + rank) leader timeouts: the ring's order.
                target = steward.target(shard, now)
                hosted.core.set_rank(target.index(self.name) if self.name in target
                                     else len(target))
            for action in steward.decide(shard, self.view(shard), now):
                self._do(action, now)

    def view(self, shard: int) -> ReplicaView | None:
        hosted = self.shards.get(shard)
        if hosted is None:
            return None
        core = hosted.core
        heard = core.leader_heard
        return ReplicaView(role=core.role, serving=core.serving, leader=core.leader,
                           voters=tuple(core.config.voters), learners=tuple(core.config.learners),
                           silent_s=0.0 if heard is None else max(0.0, self.net.now - heard),
                           removed=core.removed)

    def _do(self, action: object, now: float) -> None:
        if isinstance(action, Host):
            if any(s == action.shard for s, _ in self._writes.values()) or \
                    action.shard in self._drop:
                return  # a released replica's write is in flight: read the disk after it
            self._host(action.shard)
        elif isinstance(action, Campaign):
            self.drive(action.shard, self.shards[action.shard].core.campaign(now))
        elif isinstance(action, Reconfigure):
            self.drive(action.shard,
                        self.shards[action.shard].core.reconfigure(action.voters, now))
        elif isinstance(action, Release):
            del self.shards[action.shard]
            self.hooks.on_released(self.name, action.shard)
            if action.drop_data:  # deleted once its last write has landed
                self._drop.add(action.shard)
                self._drop_if_idle(action.shard)
        else:
            raise AssertionError(f"unknown steward action {action!r}")

    def _drop_if_idle(self, shard: int) -> None:
        if shard in self._drop and not any(s == shard for s, _ in self._writes.values()):
            self._drop.discard(shard)
            self.disks.pop(shard, None)
            self.replicas_dropped += 1

    def _host(self, shard: int) -> None:
        """Open the shard's replica from what its disk holds (empty for a new one)."""
        assert shard not in self.shards
        disk = self.disks.setdefault(shard, SimDisk())
        state: PersistedState = disk.persisted_state()
        core = Replica(self.name, shard, self.replica_cfg,
                       random.Random(self.rng.getrandbits(64)), state)
        applied = disk.applied_state
        self.shards[shard] = HostedShard(core, applied.copy() if isinstance(
            applied, ShardState) else ShardState())

    # --- the driver ---------------------------------------------------------------------------

    def drive(self, shard: int, out: Output) -> None:
        """Carry ``out`` out in the order ``Output`` prescribes."""
        hosted = self.shards[shard]
        now = self.net.now
        if out.hard_state or out.install or out.persist or out.compact:
            write = (out.hard_state, out.install, list(out.persist), out.compact)
            sends = hosted.sends_after_write = list(out.send)
            hosted.writes_in_flight += 1
            self._fsync(shard, self.timing.fsync_s * (1 + 2 * self.rng.random()) / 3,
                        lambda: self._write_done(shard, hosted, write, sends))
        elif hosted.writes_in_flight:
            hosted.sends_after_write.extend(out.send)
        else:
            self._send_all(out.send)
        if out.install is not None:
            hosted.state = out.install.data.copy()
            self.hooks.on_install(self.name, shard, hosted.state)
        for e in out.apply:
            self._apply(shard, hosted, e)
        if out.apply:
            self._durable_apply(shard, hosted, hosted.state.copy())
        for ev in out.events:
            self.hooks.on_role(self.name, shard, ev)
        for peer in out.snapshot_to:
            self.drive(shard, hosted.core.send_snapshot(peer, hosted.state.index,
                                                         hosted.state.copy(), now))

    def _apply(self, shard: int, hosted: HostedShard, e: wire.ReplEntry) -> None:
        twice = self.apply_twice and e.kind == wire.EntryKind.NORMAL
        if twice:
            self.apply_twice = False
        for _ in range(2 if twice else 1):
            prev = hosted.state.index
            hosted.state.apply(e, dedupe=self.dedupe)
            self.hooks.on_apply(self.name, shard, e, prev, hosted.state)

    def _send_all(self, sends: list[tuple[str, Any]]) -> None:
        self.repl_sent += len(sends)
        for dst, msg in sends:
            # A catch-up InstallSnapshot goes from a promiser to its candidate, at the
            # candidate's epoch: that member does not speak as leader.
            if isinstance(msg, LEADER_MESSAGES) and msg.epoch.node == self.name:
                self.hooks.on_leader_send(self.name, self.boots, msg.shard, msg.epoch)
            self.net.send(self.name, dst, msg)

    def _fsync(self, shard: int, duration_s: float, done: Callable[[], None]) -> None:
        """One write on this node's disk (writes queue behind each other)."""
        at = max(self.net.now, self._disk_busy) + duration_s
        self._disk_busy = at
        self._write_seq += 1
        self._writes[self._write_seq] = (shard, done)
        self.net.set_timer(self.name, ("fsync", self._write_seq), at)

    def _write_done(self, shard: int, hosted: HostedShard, write: tuple, sends: list) -> None:
        hard, install, persist, compact = write
        self.disks[shard].write(hard, install, persist, compact)
        hosted.writes_in_flight -= 1
        if self.shards.get(shard) is not hosted:
            return  # released meanwhile: the write lands, nobody is told
        self._send_all(sends)
        if persist:
            last = persist[-1]
            self.drive(shard, hosted.core.on_persisted(last.epoch, last.index, self.net.now))

    def _durable_apply(self, shard: int, hosted: HostedShard, state: ShardState) -> None:
        def done() -> None:
            self.disks[shard].applied_state = state  # type: ignore[assignment]
            if self.shards.get(shard) is hosted:
                self.drive(shard, hosted.core.on_applied(state.index, self.net.now))
        self._fsync(shard, self.timing.fsync_s / 3, done)
