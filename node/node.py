"""Node lifecycle: open the data dir, load every shard, serve, stop cleanly.

Owns: the cluster identity check at start (NUM_SHARDS is fixed when the data dir is created
and checked at every start, DESIGN §3.1), wiring store -> shards -> service -> server, and the
order of start-up and shutdown. Must not: hold request logic.

With one node every shard's log is a ``LocalShardLog`` (R = 1: commit = local fsync); the
cluster issue swaps in replicated logs without touching the service or the engine.
"""

from __future__ import annotations

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
from shoal.node.matching import Matching
from shoal.node.membership import ClusterMembership
from shoal.node.cluster import Router, SoloView
from shoal.node.cluster_replicas import ClusterReplicas
from shoal.node.replica_driver import NullTransport, ReplicatedShardLog
from shoal.node.replication import ReplicaConfig
from shoal.node.steward import ShardSteward
from shoal.node.server import Dispatcher, NodeIdentity, serve
from shoal.node.service import Service
from shoal.node.shard import Shard
from shoal.node.timers import TimerProcessor
from shoal.node.transfers import TransferProcessor
from shoal.store import records, tables
from shoal.store.env import Store
from shoal.store.shardlog import LocalShardLog, ShardLog
from shoal.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)

DEFAULT_NUM_SHARDS = 512
DEFAULT_CLUSTER_NAME = "shoal"


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
    shard_log: str = "local"
    """``local``: ``LocalShardLog`` (R = 1, commit = local fsync), the default until the
    cluster spreads shards; ``replicated``: every shard's history goes through its consensus
    replica (a sole voter that commits on its own fsync and stores no log entries), the
    path the cluster uses; within about 5-10% of local on W2 (see the issue 7 notes)."""
    gossip_preset: str = "lan"
    """``lan`` (memberlist's LAN defaults) or ``small`` (a few nodes on one machine or
    network: failures found about twice as fast, at more risk of false suspicion)."""


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


def open_identity(store: Store, cfg: NodeConfig, now: float) -> records.ClusterMeta:
    """Read the data dir's cluster identity, creating it on first start.

    Raises:
        ShoalError(CLUSTER_MISMATCH): ``--num-shards`` or the cluster name disagree with it.
    """
    with store.read() as txn:
        meta = tables.get_cluster_meta(txn)
    if meta is None:
        meta = records.ClusterMeta(
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
        self.service: Service | None = None
        self.membership: ClusterMembership | None = None
        self.replicas: ClusterReplicas | None = None

    async def leave(self) -> None:
        """Leave the cluster gracefully (SIGTERM): others see us as left, not failed."""
        if self.membership is not None:
            await self.membership.leave()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled; reports the bound port once serving."""
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store.open(cfg.data_dir / "lmdb")
        try:
            meta = open_identity(store, cfg, self.clock())
            async with GroupCommitWriter.open(store) as writer, trio.open_nursery() as nursery:
                matching = Matching()
                engine = HistoryEngine(HistoryConfig())
                shards: list[Shard] = []
                timers = TimerProcessor(lambda shard, task: service.fire_timer(shard, task), self.clock)
                transfers = TransferProcessor(lambda shard, task: service.process_transfer(shard, task))
                shard_logs = await self._open_shard_logs(nursery, store, writer, meta)
                for sid in range(meta.num_shards):
                    shards.append(Shard(
                        sid, store=store, shard_log=shard_logs[sid],
                        engine=engine, matching=matching, timers=timers, clock=self.clock,
                        transfers=transfers,
                    ))
                service = Service(store=store, shards=shards, matching=matching, engine=engine,
                                  clock=self.clock, view=SoloView(meta.node_id))
                self.service = service
                for shard in shards:
                    shard.load()
                await nursery.start(timers.run)
                await nursery.start(transfers.run)
                identity = NodeIdentity(meta.node_id, meta.cluster_name, meta.num_shards)
                dispatcher = Dispatcher(service, identity)
                router = Router(service.view, meta.num_shards, None, dispatcher.serve_local)
                dispatcher.router = service.router = router
                port = await nursery.start(serve, dispatcher, cfg.host, cfg.port)
                self.port = port
                await self._start_membership(nursery, dispatcher, meta, port)
                log.info(
                    "node serving listen=%s:%d data_dir=%s shards=%d node_id=%s",
                    cfg.host, port, cfg.data_dir, meta.num_shards, meta.node_id,
                )
                gc.freeze()  # start-up's objects live for good: keep them out of collections
                task_status.started(port)
        finally:
            store.close()
            log.info("node stopped data_dir=%s", cfg.data_dir)

    async def _open_shard_logs(self, nursery: trio.Nursery, store: Store,
                               writer: GroupCommitWriter, meta: records.ClusterMeta
                               ) -> list[ShardLog]:
        """Each shard's log. Replicated: a sole-voter replica per shard, bootstrapped on
        first start, campaigning at every start (a new epoch and its no-op entry, all shards
        in a few group commits), serving before the node accepts requests."""
        if self.cfg.shard_log == "local":
            return [LocalShardLog(sid, store, writer, write_entries=False)
                    for sid in range(meta.num_shards)]
        started = time.monotonic()
        # The cluster's machinery with one member: the steward bootstraps every shard with
        # this node as sole voter (first start) and has it campaign (every start).
        replicas = ClusterReplicas(ShardSteward(meta.node_id, meta.num_shards), store, writer,
                                   NullTransport(), ReplicaConfig(fallback=False))
        await nursery.start(functools.partial(replicas.run, found=True))
        drivers = [replicas.drivers[sid] for sid in range(meta.num_shards)]
        for driver in drivers:
            await driver.wait_serving()
        self.replicas = replicas
        log.info("shard replicas serving shards=%d replicas=1 took_s=%.2f", len(drivers),
                 time.monotonic() - started)
        return [ReplicatedShardLog(d) for d in drivers]

    async def _start_membership(self, nursery: trio.Nursery, dispatcher: Dispatcher,
                                meta: records.ClusterMeta, port: int) -> None:
        """Gossip on UDP at the listen host and the same port number as the WebSocket API
        (DESIGN §1); the member name is the data dir's node id."""
        cfg = self.cfg
        advertise = advertised_address(cfg, port)
        member_meta = wire.MemberMeta(api_addr=f"ws://{advertise}",
                                      cluster_name=meta.cluster_name, num_shards=meta.num_shards)
        membership = ClusterMembership(meta.node_id, gossip_config(cfg), member_meta, advertise,
                                       list(cfg.seeds))
        dispatcher.add_handler(wire.Op.GOSSIP_STREAM, membership.on_gossip_stream)
        dispatcher.add_handler(wire.Op.CLUSTER_STATUS, membership.on_cluster_status)
        dispatcher.add_handler(wire.Op.GOSSIP_FAULTS, membership.on_gossip_faults)
        await nursery.start(membership.run, cfg.host, port)
        self.membership = membership
