"""Node lifecycle: open the data dir, load every shard, serve, stop cleanly.

Owns: the cluster identity check at start (NUM_SHARDS is fixed when the data dir is created
and checked at every start, DESIGN §3.1), wiring store -> shards -> handlers -> server, and the
order of start-up and shutdown. Must not: hold request logic.

With one node every shard's log is a ``LocalShardLog`` (R = 1: commit = local fsync); the
cluster issue swaps in replicated logs without touching the handlers or the engine.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.node.history.engine import HistoryConfig, HistoryEngine
from shoal.node.matching.matching import Matching
from shoal.node.cluster.membership import ClusterMembership
from shoal.node.cluster.netfault import NetworkFaults
from shoal.node.cluster.peer_link import PeerLink
from shoal.node.cluster.router import Router
from shoal.node.cluster.task_router import TaskRouter
from shoal.node.cluster.views import ClusterView, RingView, SoloView
from shoal.node.replication.hosting import ClusterReplicas
from shoal.node.replication.driver import ReplicatedShardLog
from shoal.node.replication.transport import PeerReplicaTransport, ReplicaHost
from shoal.node.replication import ReplicaConfig
from shoal.node.replication.steward import ShardSteward
from shoal.node.api.server import Dispatcher, NodeIdentity, serve
from shoal.node.api.handlers import Handlers
from shoal.node.shard.shard import NotServingLog, Shard, TaskSink
from shoal.node.shard.shards import ShardSet
from shoal.node.shard.timers import TimerProcessor, timer_firer
from shoal.node.shard.transfers import TransferProcessor
from shoal.store import tables
from shoal.store.env import Store
from shoal.store.meta import ClusterMeta
from shoal.store.shardlog import LocalShardLog
from shoal.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)

DEFAULT_NUM_SHARDS = 512
DEFAULT_CLUSTER_NAME = "shoal"
# Every hosted shard is ticked every heartbeat/2 and every leader heartbeats its followers:
# at the core's defaults (50 ms / 500 ms) an idle 3-node cluster of 512 shards burned 0.40
# of a core per node. Appends, commits and read barriers do not wait for a heartbeat, so
# only idle traffic and the fallback campaign's timing change; a dead leader is replaced
# by the steward as soon as gossip declares it dead (first ALIVE voter), or by the
# fallback after 2-3 leader timeouts, whichever comes first. A campaign gives up after
# 1.5 s without progress (a promise, a catch-up page), as long as a leader waits for acks:
# with the core's 0.5 s, CPU starvation made most campaigns give up after deposing the
# leader, and two voters took turns deposing each other (issue 7, repro_relead).
CLUSTER_REPLICA_CONFIG = ReplicaConfig(heartbeat_interval_s=0.25, leader_timeout_s=1.5,
                                       prepare_timeout_s=1.5)
LEAVE_HANDOFF_MAX_S = 10.0  # a leaving node waits this long at most for others to take over
REDISPATCH_DELAY_S = 0.3
# Matching is soft state: a task not started this long after it was handed off is handed
# off again (DESIGN §3 step 4), checked every DISPATCH_SWEEP_S.
DISPATCH_DEADLINE_S = 10.0
DISPATCH_SWEEP_S = 5.0  # a burst of membership changes re-dispatches tasks once


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How to start a node."""

    data_dir: Path
    """Where the node keeps its LMDB environment (``<data_dir>/lmdb``)."""
    host: str = "127.0.0.1"
    """Address to listen on for clients, workers and peers."""
    port: int = 7350
    """TCP port; 0 picks a free one (tests)."""
    num_shards: int | None = None
    """Shards of a NEW data dir (default 512); an existing one must match if given."""
    cluster_name: str = DEFAULT_CLUSTER_NAME
    seeds: tuple[str, ...] = ()
    """``HOST:PORT`` of members to join through (``--join``); empty starts a new cluster."""
    advertise: str | None = None
    """``HOST:PORT`` peers and clients should use (default: the listen address, with the
    bound port when the port is 0). Required when listening on a wildcard address."""
    cluster_key: bytes | None = None
    """Authenticates every gossip frame (HMAC-SHA256); None sends plain frames."""
    shard_log: str = "replicated"
    """``replicated``: the cluster's path: every shard's history goes through its consensus
    group (R = 3, fewer while fewer members are alive; R = 1 commits on the local fsync and
    stores no log entries); ``local``: ``LocalShardLog`` on one node that never joins."""
    replace_after_s: float = 30.0
    """How long a dead member keeps its place in shard replica sets (see ``ShardSteward``)."""
    gossip_preset: str = "lan"
    """``lan`` (memberlist's LAN defaults) or ``small`` (a few nodes on one machine or
    network: a kill -9 seen by every member in 1.4-2.3 s over 40 measured runs, at more
    gossip traffic and more risk of false suspicion)."""


GOSSIP_PRESETS = ("lan", "small")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def advertised_address(cfg: NodeConfig, bound_port: int) -> str:
    """The ``HOST:PORT`` this node tells peers and clients (see ``NodeConfig.advertise``).

    Raises:
        ShoalError(INVALID_ARGUMENT): a wildcard listen address without ``--advertise``.
    """
    if cfg.advertise is None:
        if cfg.host in _WILDCARD_HOSTS:
            raise wire.ShoalError(
                wire.Code.INVALID_ARGUMENT,
                f"listening on {cfg.host or '*'} needs --advertise HOST:PORT: the address "
                "other nodes and clients can reach this one at")
        host, port = cfg.host, bound_port
    else:
        host, _, port_text = cfg.advertise.rpartition(":")
        port = int(port_text) or bound_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gossip_config(cfg: NodeConfig) -> SwimConfig:
    """The SWIM timing preset named by ``cfg.gossip_preset``, with the cluster key."""
    assert cfg.gossip_preset in GOSSIP_PRESETS, cfg.gossip_preset
    preset = SwimConfig.small if cfg.gossip_preset == "small" else SwimConfig.lan
    return preset(cluster_key=cfg.cluster_key)


def open_identity(store: Store, cfg: NodeConfig, now: float) -> ClusterMeta:
    """Read the data dir's cluster identity, creating it on first start.

    Raises:
        ShoalError(CLUSTER_MISMATCH): ``--num-shards`` or the cluster name disagree with it.
    """
    with store.read() as txn:
        meta = tables.get_cluster_meta(txn)
    if meta is None:
        meta = ClusterMeta(
            cluster_name=cfg.cluster_name, num_shards=cfg.num_shards or DEFAULT_NUM_SHARDS,
            node_id=str(uuid.uuid4()), created_at=now,
        )
        store.write_sync([tables.put_cluster_meta(meta)])
        return meta
    if cfg.num_shards is not None and cfg.num_shards != meta.num_shards:
        raise wire.ShoalError(
            wire.Code.CLUSTER_MISMATCH,
            f"the data dir {cfg.data_dir} was created with {meta.num_shards} shards; "
            f"--num-shards {cfg.num_shards} cannot change it (shards are fixed at creation)",
        )
    if cfg.cluster_name != meta.cluster_name:
        raise wire.ShoalError(
            wire.Code.CLUSTER_MISMATCH,
            f"the data dir {cfg.data_dir} belongs to cluster {meta.cluster_name!r}, "
            f"not {cfg.cluster_name!r}",
        )
    return meta


class Node:
    """One shoal node process."""

    def __init__(self, cfg: NodeConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.port: int | None = None
        self.handlers: Handlers | None = None
        self.router: Router | None = None
        self.membership: ClusterMembership | None = None
        self.replicas: ClusterReplicas | None = None
        self._replica_host = ReplicaHost()
        self._api_addrs: dict[str, str] = {}  # every member's API address we have seen
        self.faults = NetworkFaults()  # the partition drill: every path between nodes obeys it

    async def leave(self) -> None:
        """Leave the cluster gracefully (SIGTERM): hand the shards led here to the ring's
        next members, and let the others see us as left, not failed (they re-replicate
        our shards at once instead of after ``replace_after``). Bounded by
        ``LEAVE_HANDOFF_MAX_S``: a shard nobody takes over by then fails over as after a
        crash."""
        if self.membership is None:
            return
        replicas = self.replicas
        if replicas is not None:
            replicas.steward.leaving = True
        await self.membership.leave()
        if replicas is None or not any(m.name != self.membership.name
                                       for m in self.membership.swim.alive_members()):
            return
        started = time.monotonic()
        with trio.move_on_after(LEAVE_HANDOFF_MAX_S):
            while led := [s for s in range(replicas.steward.num_shards) if replicas.serving(s)]:
                await trio.sleep(0.05)
        log.info("left the cluster shards_still_led=%d took_s=%.2f", len(led),
                 time.monotonic() - started)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; reports the bound port once serving."""
        cfg = self.cfg
        if cfg.seeds and cfg.shard_log == "local":
            raise wire.ShoalError(
                wire.Code.INVALID_ARGUMENT,
                "--shard-log local keeps every shard on this node alone; joining a cluster "
                "needs --shard-log replicated (the default)")
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(cfg.data_dir / "lmdb")
        try:
            with store.read() as txn:
                created = tables.get_cluster_meta(txn) is None
            meta = open_identity(store, cfg, self.clock())
            async with GroupCommitWriter.open(store) as writer, trio.open_nursery() as nursery:
                await self._serve(nursery, store, writer, meta,
                                  found=created and not cfg.seeds, task_status=task_status)
        finally:
            store.close()
            log.info("node stopped data_dir=%s", cfg.data_dir)

    async def _serve(self, nursery: trio.Nursery, store: Store, writer: GroupCommitWriter,
                     meta: ClusterMeta, *, found: bool,
                     task_status: trio.TaskStatus[int]) -> None:
        cfg = self.cfg
        clustered = cfg.shard_log == "replicated"
        matching = Matching()
        engine = HistoryEngine(HistoryConfig())
        timers = TimerProcessor(lambda shard, task: fire(shard, task), self.clock)
        transfers = TransferProcessor(
            lambda shard, task: handlers.cross_workflow.process_transfer(shard, task))
        if clustered:
            peers: PeerLink | None = PeerLink(meta.node_id, cfg.cluster_key, self.faults)
            nursery.start_soon(_close_when_cancelled, peers)
            replicas = self._cluster_replicas(nursery, store, writer, meta,
                                              lambda shard, on: on_serving(shard, on))
            view: ClusterView = RingView(meta.node_id, replicas, self._alive_members)
            tasks: TaskSink = TaskRouter(view, matching, peers,
                                         still_mine=lambda t: view.serving(t.shard))
        else:
            peers, replicas = None, None
            view, tasks = SoloView(meta.node_id), matching
        shards = [
            Shard(sid, store=store, engine=engine, matching=tasks, timers=timers,
                  clock=self.clock, transfers=transfers, shard_log=NotServingLog(sid)
                  if clustered else LocalShardLog(sid, store, writer, write_entries=False))
            for sid in range(meta.num_shards)]
        shard_set = ShardSet(store, shards, view)
        fire = timer_firer(shard_set, engine)
        handlers = self.handlers = Handlers(shard_set, engine, matching, tasks)

        def on_serving(shard: int, serving: bool) -> None:
            assert replicas is not None
            if serving:
                shards[shard].activate(ReplicatedShardLog(replicas.drivers[shard]))
            else:
                shards[shard].deactivate()
                timers.drop_shard(shard)
            log.debug("shard %s shard=%d", "led here" if serving else "no longer led here", shard)

        if not clustered:
            for shard in shards:
                shard.load()
        await nursery.start(timers.run)
        await nursery.start(transfers.run)
        dispatcher = Dispatcher(handlers.table(),
                                NodeIdentity(meta.node_id, meta.cluster_name, meta.num_shards))
        dispatcher.peer_key = cfg.cluster_key
        dispatcher.peer_cut_off = self.faults.refuses_peer
        router = self.router = Router(view, meta.num_shards, peers, dispatcher.serve_local)
        dispatcher.router = shard_set.router = router
        port = self.port = await nursery.start(serve, dispatcher, cfg.host, cfg.port)
        await self._join(nursery, dispatcher, meta, port, tasks, view, replicas, shards,
                         found=found)
        log.info(
            "node serving listen=%s:%d data_dir=%s shards=%d node_id=%s shard_log=%s",
            cfg.host, port, cfg.data_dir, meta.num_shards, meta.node_id, cfg.shard_log,
        )
        gc.freeze()  # start-up's objects live for good: keep them out of collections
        task_status.started(port)

    async def _join(self, nursery: trio.Nursery, dispatcher: Dispatcher, meta: ClusterMeta,
                    port: int, tasks: TaskSink, view: ClusterView,
                    replicas: ClusterReplicas | None, shards: list[Shard], *, found: bool) -> None:
        """Start gossip and, in a cluster, the peer ops, the task router and the replicas;
        a new cluster's founder waits until it serves every shard."""
        if replicas is not None:
            assert isinstance(tasks, TaskRouter) and isinstance(view, RingView)
            dispatcher.add_handler(wire.Op.REPL_MESSAGES, self._replica_host.on_repl_messages)
            dispatcher.add_handler(wire.Op.ADD_TASKS, tasks.on_add_tasks)
            await nursery.start(tasks.run)
        await self._start_membership(nursery, dispatcher, meta, port)
        if replicas is None:
            return
        assert isinstance(view, RingView)
        self._watch_members(nursery, view, replicas, shards)
        await nursery.start(functools.partial(replicas.run, found=found))
        if found:
            started = time.monotonic()
            await replicas.wait_serving(range(meta.num_shards))
            log.info("shards serving shards=%d took_s=%.2f", meta.num_shards,
                     time.monotonic() - started)

    def _cluster_replicas(self, nursery: trio.Nursery, store: Store, writer: GroupCommitWriter,
                          meta: ClusterMeta, on_serving: Callable[[int, bool], None]
                          ) -> ClusterReplicas:
        """This node's part of every shard's replica group, talking to peers over their API."""
        self._replica_host = ReplicaHost()
        links = PeerLink(meta.node_id, self.cfg.cluster_key)
        nursery.start_soon(_close_when_cancelled, links)
        transport = PeerReplicaTransport(links,
                                         lambda node: self._api_addrs.get(node), nursery,
                                         host=self._replica_host, faults=self.faults)
        replicas = ClusterReplicas(ShardSteward(meta.node_id, meta.num_shards,
                                                replace_after_s=self.cfg.replace_after_s),
                                   store, writer, transport, CLUSTER_REPLICA_CONFIG,
                                   on_serving=on_serving)
        self.replicas = replicas
        return replicas

    async def _on_cluster_status(self, namespace: str, req: wire.ClusterStatusRequest
                                 ) -> wire.ClusterStatusResponse:
        """``CLUSTER_STATUS``: gossip's view of the members, plus what this node owns."""
        assert self.membership is not None and self.handlers is not None
        resp = self.membership.status()
        handlers = self.handlers
        queues = sorted({f"{q['task_queue']} ({q['kind'].lower()})"
                         for q in handlers.matching.stats()})
        routing: dict[str, int] = {}
        if self.router is not None:
            routing = {"forwarded": self.router.forwarded, "retried": self.router.retried}
        tasks = handlers.tasks
        if isinstance(tasks, TaskRouter):
            routing.update(tasks_sent=tasks.sent, tasks_resent=tasks.resent)
        led: list[int] = []
        replicated: list[int] = []
        under: list[int] = []
        if self.replicas is not None:
            alive = {m.name for m in resp.members if m.state in ("alive", "suspect")}
            want = min(self.replicas.steward.rf, max(len(alive), 1))
            for shard in sorted(self.replicas.drivers):
                if self.replicas.serving(shard):
                    led.append(shard)
                    # Below R, or still counting a dead voter in its quorum (then one more
                    # failure can stop it even with R live replicas), or moving to a new
                    # configuration not committed yet (the old voters' quorum still decides).
                    core = self.replicas.drivers[shard].replica
                    voters = core.config.voters
                    live = sum(1 for v in voters if v in alive)
                    if live < want or live < len(voters) or core.log.config_index > core.commit:
                        under.append(shard)
                else:
                    replicated.append(shard)
        else:
            led = list(range(resp.num_shards))
        return dataclasses.replace(resp, shards_led=led, shards_replicated=replicated,
                                   shards_under_replicated=under, task_queues=queues,
                                   routing=routing)

    def _alive_members(self) -> dict[str, str]:
        """Alive (or suspected) members' API addresses by node id, from gossip."""
        if self.membership is None:
            return {}
        members = {m.name: m.meta.api_addr.removeprefix("ws://")
                   for m in self.membership.swim.alive_members()}
        self._api_addrs.update(members)
        return members

    def _watch_members(self, nursery: trio.Nursery, view: RingView, replicas: ClusterReplicas,
                       shards: list[Shard]) -> None:
        """On every membership change: re-read the ring's members, let the steward
        reconsider every shard, and (shortly after, once for a burst of changes) re-dispatch
        the tasks of every shard led here, since partition owners may have moved; between
        changes, re-dispatch the tasks past their dispatch deadline."""
        assert self.membership is not None
        changed = trio.Event()

        membership = self.membership

        def on_change() -> None:
            nonlocal changed
            view.refresh()
            left = [m.name for m in membership.swim.members() if m.state.name == "LEFT"]
            replicas.set_members(view.alive, left)
            changed.set()

        async def redispatch() -> None:
            nonlocal changed
            while True:
                with trio.move_on_after(DISPATCH_SWEEP_S):
                    await changed.wait()
                if changed.is_set():
                    await trio.sleep(REDISPATCH_DELAY_S)
                    changed = trio.Event()
                    older_than, why = 0.0, "a membership change"
                else:
                    older_than, why = DISPATCH_DEADLINE_S, "their dispatch deadline"
                n = sum(s.redispatch(older_than) for s in shards if view.serving(s.shard_id))
                if n:
                    log.info("tasks re-dispatched after %s tasks=%d", why, n)

        self.membership.on_change = on_change
        on_change()
        nursery.start_soon(redispatch)

    async def _start_membership(self, nursery: trio.Nursery, dispatcher: Dispatcher,
                                meta: ClusterMeta, port: int) -> None:
        """Gossip on UDP at the listen host and the same port number as the WebSocket API
        (DESIGN §1); the member name is the data dir's node id."""
        cfg = self.cfg
        advertise = advertised_address(cfg, port)
        member_meta = wire.MemberMeta(api_addr=f"ws://{advertise}",
                                      cluster_name=meta.cluster_name, num_shards=meta.num_shards)
        membership = ClusterMembership(meta.node_id, gossip_config(cfg), member_meta, advertise,
                                       list(cfg.seeds), faults=self.faults)
        dispatcher.add_handler(wire.Op.GOSSIP_STREAM, membership.on_gossip_stream)
        dispatcher.add_handler(wire.Op.CLUSTER_STATUS, self._on_cluster_status)
        dispatcher.add_handler(wire.Op.NETWORK_FAULTS, membership.on_network_faults)
        await nursery.start(membership.run, cfg.host, port)
        self.membership = membership


async def _close_when_cancelled(link: PeerLink) -> None:
    """Close a peer link's connections when the node stops (its readers are system tasks)."""
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await link.aclose()
