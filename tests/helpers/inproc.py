"""An in-process node (real LMDB, real service, real WebSocket server) for trio tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from shoal.node.node import Node, NodeConfig


@asynccontextmanager
async def inproc_node(data_dir: Path, *, num_shards: int = 8) -> AsyncIterator[Node]:
    """Run a node inside the current trio run; cancelled when the block exits."""
    node = Node(NodeConfig(data_dir=data_dir, port=0, num_shards=num_shards))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        try:
            yield node
        finally:
            nursery.cancel_scope.cancel()
