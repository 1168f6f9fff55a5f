"""Node lifecycle: open the data dir, load every shard, serve, stop cleanly.

Owns: the cluster identity check at start (NUM_SHARDS is fixed when the data dir is created
and checked at every start, DESIGN §3.1), wiring store -> shards -> service -> server, and the
order of start-up and shutdown. Must not: hold request logic.

With one node every shard's log is a ``LocalShardLog`` (R = 1: commit = local fsync); the
cluster issue swaps in replicated logs without touching the service or the engine.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from shoal import wire
from shoal.node.history.engine import HistoryConfig, HistoryEngine
from shoal.node.matching import Matching
from shoal.node.server import Dispatcher, NodeIdentity, serve
from shoal.node.service import Service
from shoal.node.shard import Shard
from shoal.node.timers import TimerProcessor
from shoal.node.transfers import TransferProcessor
from shoal.store import records, tables
from shoal.store.env import Store
from shoal.store.shardlog import LocalShardLog
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
                for sid in range(meta.num_shards):
                    shards.append(Shard(
                        sid, store=store, shard_log=LocalShardLog(sid, store, writer, write_entries=False),
                        engine=engine, matching=matching, timers=timers, clock=self.clock,
                        transfers=transfers,
                    ))
                service = Service(store=store, shards=shards, matching=matching, engine=engine,
                                  clock=self.clock)
                self.service = service
                for shard in shards:
                    shard.load()
                await nursery.start(timers.run)
                await nursery.start(transfers.run)
                identity = NodeIdentity(meta.node_id, meta.cluster_name, meta.num_shards)
                port = await nursery.start(serve, Dispatcher(service, identity), cfg.host, cfg.port)
                self.port = port
                log.info(
                    "node serving listen=%s:%d data_dir=%s shards=%d node_id=%s",
                    cfg.host, port, cfg.data_dir, meta.num_shards, meta.node_id,
                )
                task_status.started(port)
        finally:
            store.close()
            log.info("node stopped data_dir=%s", cfg.data_dir)
