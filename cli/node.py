"""``shoal node ...``: run a node process.

Owns: parsing the node's command-line options (cluster ones included: ``--join``,
``--advertise``, ``--cluster-key-file``, ``--gossip-preset``), logging set-up, and turning
SIGINT/SIGTERM into a graceful leave and a clean shutdown. Must not: hold node logic (``shoal.node.node`` does).
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # the node is imported when `node start` runs, not for every command
    from shoal.node.node import NodeConfig

app = typer.Typer(help="Run and manage a shoal node.", no_args_is_help=True)


def parse_hostport(value: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); raises ``typer.BadParameter`` with the fix."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT (for example 127.0.0.1:7350)")
    return host, int(port)


@app.command("start")
def start(
    data_dir: Path = typer.Option(Path("./shoal-data"), help="Where this node keeps its data."),
    listen: str = typer.Option("127.0.0.1:7350", help="HOST:PORT for clients, workers and peers."),
    num_shards: int = typer.Option(
        None, help="Shards of a new data dir (default 512); fixed once created."
    ),
    join: list[str] = typer.Option(
        None, "--join", help="HOST:PORT of a cluster member to join through; repeatable."),
    cluster_name: str = typer.Option(
        "shoal", help="The cluster's name, fixed when the data dir is created; a member of "
                      "another cluster is refused."),
    advertise: str = typer.Option(
        None, help="HOST:PORT peers and clients should use (default: the listen address)."),
    cluster_key_file: Path = typer.Option(
        None, help="A file of 32+ bytes of key material, the same on every node: gossip "
                   "frames are authenticated with it."),
    gossip_preset: str = typer.Option(
        "lan", help="lan (memberlist's LAN defaults) or small (a few nodes on one machine "
                    "or network: a kill -9 is seen by every member within about 2-2.5 s)."),
    shard_log: str = typer.Option(
        "replicated", help="replicated (the default: each shard's history goes through its "
                           "consensus group, R = 3, fewer while fewer nodes are alive) or local "
                           "(one node alone, no replication; cannot --join)."),
    replace_after: float = typer.Option(
        30.0, help="Seconds a dead member keeps its shard replicas before the others "
                   "re-replicate them elsewhere (a restart within it catches up from disk)."),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Start a node and serve until SIGINT or SIGTERM (it leaves the cluster first)."""
    # The typer option list above is the one exception to the 60-line rule: keep this body calls.
    from shoal.node.node import NodeConfig

    host, port = parse_hostport(listen)
    _check_options(num_shards, join, advertise, gossip_preset, shard_log, replace_after,
                   cluster_name)
    seeds = tuple(":".join(map(str, parse_hostport(j))) for j in join or [])
    key = _cluster_key(cluster_key_file)
    _configure_logging(log_level)
    cfg = NodeConfig(data_dir=data_dir, host=host, port=port, num_shards=num_shards,
                     cluster_name=cluster_name,
                     seeds=seeds, advertise=advertise, cluster_key=key,
                     gossip_preset=gossip_preset, shard_log=shard_log,
                     replace_after_s=replace_after)
    _serve(cfg)


def _check_options(
    num_shards: int | None, join: list[str] | None, advertise: str | None, gossip_preset: str,
    shard_log: str, replace_after: float, cluster_name: str,
) -> None:
    """Refuse bad option values with ``typer.BadParameter`` (exit 2) naming the fix."""
    from shoal.node.node import GOSSIP_PRESETS

    if num_shards is not None and not 1 <= num_shards <= 65535:
        raise typer.BadParameter("--num-shards must be between 1 and 65535")
    for j in join or []:
        parse_hostport(j)
    if advertise is not None:
        parse_hostport(advertise)
    if gossip_preset not in GOSSIP_PRESETS:
        raise typer.BadParameter(f"{gossip_preset!r} is not one of {', '.join(GOSSIP_PRESETS)}",
                                 param_hint="--gossip-preset")
    if shard_log not in ("replicated", "local"):
        raise typer.BadParameter(f"{shard_log!r} is not replicated or local",
                                 param_hint="--shard-log")
    if not 0 < replace_after <= 86400:
        raise typer.BadParameter("--replace-after must be in (0, 86400] seconds")
    if not cluster_name or len(cluster_name) > 200 or not cluster_name.isprintable():
        raise typer.BadParameter("--cluster-name must be 1-200 printable characters")


def _cluster_key(path: Path | None) -> bytes | None:
    """The gossip key read from ``--cluster-key-file``, or None without one."""
    from shoal.node.cluster.membership import read_cluster_key

    if path is None:
        return None
    try:
        return read_cluster_key(path)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cluster-key-file") from None


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _serve(cfg: NodeConfig) -> None:
    """Run the node until SIGINT/SIGTERM, then leave; start-up errors become one line."""
    import trio

    from shoal import wire
    from shoal.node.node import Node

    # The node keeps many long-lived objects (replica logs, caches); with CPython's default
    # thresholds its full collections stalled the loop for up to ~100 ms under load (W3 p99
    # 95-110 ms, W2 -20%). Collect young objects less often and freeze what start-up made.
    gc.set_threshold(100_000, 50, 1000)

    async def main() -> None:
        node = Node(cfg)
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                await nursery.start(node.run)
                async for signum in signals:
                    logging.getLogger("shoal").info(
                        "stopping on signal=%s", signal.Signals(signum).name
                    )
                    await node.leave()  # bounded: a few gossip intervals
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except BaseException as exc:  # noqa: BLE001 - report start-up errors as one line
        leaf = _leaf(exc)
        if isinstance(leaf, wire.ShoalError):
            typer.secho(f"error: {leaf.message} [{leaf.code}]", fg="red", err=True)
        elif isinstance(leaf, OSError):
            typer.secho(f"error: cannot start the node: {leaf}", fg="red", err=True)
        elif isinstance(leaf, KeyboardInterrupt):
            return
        else:
            raise
        raise typer.Exit(2) from None


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside trio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
