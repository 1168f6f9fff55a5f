"""Integration fixtures: a real ``shoal node start`` process per test module."""

from __future__ import annotations

import pytest

from helpers.node_proc import NodeProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    proc = NodeProcess(tmp_path_factory.mktemp("node") / "data")
    proc.start()
    yield proc
    proc.kill()


@pytest.fixture
async def client(node: NodeProcess):
    from shoal.client import Client

    c = await Client.connect(node.address)
    yield c
    await c.service.close()
