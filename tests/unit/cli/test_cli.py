"""The ``shoal`` command line: argument checks and the simulator pass-through."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from shoal.cli.main import app
from shoal.cli.node import parse_hostport

runner = CliRunner()


@pytest.mark.parametrize("value", ["7350", "host:", ":7350", "h:99999", "h:port"])
def test_bad_listen_address_is_refused_with_an_example(value: str) -> None:
    with pytest.raises(typer.BadParameter) as info:
        parse_hostport(value)
    assert "HOST:PORT" in str(info.value)


def test_listen_address_parses() -> None:
    assert parse_hostport("127.0.0.1:7350") == ("127.0.0.1", 7350)


def test_sim_gossip_prints_one_json_object_and_is_deterministic() -> None:
    args = ["sim", "gossip", "--nodes", "8", "--seed", "5", "--loss", "0.05", "--json"]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["false_positives"] == 0 and report["marked_dead"] == 7
    assert first.output == second.output


def test_sim_replication_reports_no_violations() -> None:
    result = runner.invoke(app, ["sim", "replication", "--replicas", "3", "--seed", "2",
                                 "--steps", "1500", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["violations"] == []


def test_node_start_with_a_mismatched_shard_count_exits_with_one_line(tmp_path) -> None:
    from shoal.node.node import NodeConfig, open_identity
    from shoal.store.env import Store

    store = Store.open(tmp_path / "lmdb")
    open_identity(store, NodeConfig(data_dir=tmp_path, num_shards=4), 0.0)
    store.close()
    result = runner.invoke(app, ["node", "start", "--data-dir", str(tmp_path.parent / tmp_path.name),
                                 "--listen", "127.0.0.1:0", "--num-shards", "8"])
    assert result.exit_code == 2
    assert "created with 4 shards" in result.output


def test_cluster_status_last_contact_reads_as_an_age() -> None:
    from shoal.cli.render import contact_text

    cases = [((None, False), "-"), ((0.42, True), "-"), ((0.42, False), "0.4s ago"),
             ((59.94, False), "59.9s ago"), ((125.0, False), "2m 5s ago")]
    for args, want in cases:
        assert contact_text(*args) == want


@pytest.mark.parametrize("args", [[], ["--clear", "--block", "127.0.0.1:7351"]])
def test_partition_drill_needs_either_block_or_clear(args: list[str]) -> None:
    result = runner.invoke(app, ["cluster", "partition-drill", *args])
    assert result.exit_code == 1 and "give --block HOST:PORT" in _unboxed(result.output)


@pytest.mark.parametrize("args, message", [
    (["--gossip-preset", "wan"], "is not one of lan, small"),
    (["--join", "seed"], "HOST:PORT"),
    (["--advertise", "10.0.0.1"], "HOST:PORT"),
])
def test_node_start_refuses_bad_cluster_options(args: list[str], message: str, tmp_path) -> None:
    result = runner.invoke(app, ["node", "start", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2 and message in _unboxed(result.output)


def test_node_start_refuses_a_short_cluster_key_file(tmp_path) -> None:
    key = tmp_path / "key"
    key.write_text("too short\n")
    result = runner.invoke(app, ["node", "start", "--data-dir", str(tmp_path / "d"),
                                 "--cluster-key-file", str(key)])
    assert result.exit_code == 2 and "needs at least 32" in _unboxed(result.output)


def _unboxed(output: str) -> str:
    """typer's error box as one line of words (it wraps at the terminal width)."""
    return " ".join(output.replace("│", " ").split())
