"""``shoal cluster ...`` in-process against fake nodes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from helpers.cli_fake import fake_node
from shoal import wire
from shoal.cli.main import app

runner = CliRunner()


def _member(name: str, **kw) -> wire.ClusterMember:
    return wire.ClusterMember(name=name, state=kw.pop("state", "alive"), incarnation=1,
                              gossip_addr=f"{name}:1", api_addr=f"ws://{name}:2", **kw)


def test_status_asks_every_other_alive_member_once_without_retrying(monkeypatch) -> None:
    resp = wire.ClusterStatusResponse(
        node="a", cluster_name="c", num_shards=4, shards_led=[0, 1],
        members=[_member("a", is_self=True), _member("b"), _member("d", state="dead")])
    made = fake_node(monkeypatch, {wire.Op.CLUSTER_STATUS: resp})
    res = runner.invoke(app, ["cluster", "status", "--json"])
    assert res.exit_code == 0, res.output
    assert sorted(json.loads(res.output)["nodes"]) == ["a", "b"]  # the dead one is not asked
    assert len(made) == 2 and all(s.closed for s in made)
    assert [op for s in made for op, _ in s.sent] == [wire.Op.CLUSTER_STATUS] * 2


def test_partition_drill_sends_the_blocked_addresses_and_clear_sends_none(monkeypatch) -> None:
    made = fake_node(monkeypatch, {wire.Op.NETWORK_FAULTS: wire.Empty()})
    res = runner.invoke(app, ["cluster", "partition-drill", "--block", "b:1", "--block", "c:1",
                              "--address", "ws://a:2"])
    assert res.exit_code == 0 and res.output == "partition drill on ws://a:2: cut off from b:1, c:1\n"
    cleared = runner.invoke(app, ["cluster", "partition-drill", "--clear", "--address", "ws://a:2"])
    assert cleared.output == "partition drill on ws://a:2 cleared\n"
    assert [req.blocked_addrs for s in made for _, req in s.sent] == [["b:1", "c:1"], []]
