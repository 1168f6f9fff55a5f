"""``shoal cluster ...``: the cluster as one node sees it.

Owns: ``shoal cluster status`` (every member with its state, incarnation, addresses and the
age of our last contact with it, plus the answering node's gossip health and counters, and
what each alive member owns), as rich tables or, with ``--json``, one JSON object on stdout;
and ``shoal cluster partition-drill``, the fault-injection drill that cuts one node off from
named peers (gossip, replication and requests between the nodes).
Must not: import ``shoal.node`` (a client command stays light and runs anywhere), build wire
requests (it calls typed ``Client`` methods), or lay out output (``render.py`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from shoal import wire
from shoal.cli import render
from shoal.cli.remote import ADDRESS, JSON_OUT, call, fail, out

if TYPE_CHECKING:  # the SDK is imported when a command runs: `shoal --help` stays quick
    from shoal.sdk.client import Client

app = typer.Typer(help="Inspect the cluster.", no_args_is_help=True)

MEMBER_ANSWER_S = 5.0  # how long `status` waits for each other member's own view


async def _each_node(client: Client) -> tuple[wire.ClusterStatusResponse, render.NodeViews]:
    """The answering node's view, and every alive member's own (what it owns)."""
    import trio

    from shoal.sdk.client import Client

    resp = await client.cluster_status()
    views: render.NodeViews = {resp.node: resp}

    async def ask(member: wire.ClusterMember) -> None:
        try:
            with trio.fail_after(MEMBER_ANSWER_S):
                other = await Client.connect(member.api_addr)
                try:
                    views[member.name] = await other.cluster_status(retry_for_s=0)
                finally:
                    await other.close()
        except Exception as exc:  # noqa: BLE001 - one silent node must not hide the rest
            views[member.name] = f"no answer ({type(exc).__name__})"

    async with trio.open_nursery() as nursery:
        for m in resp.members:
            if m.state == "alive" and not m.is_self:
                nursery.start_soon(ask, m)
    return resp, views


@app.command("status")
def status(address: str = ADDRESS, as_json: bool = JSON_OUT) -> None:
    """Every member the node at --address knows, with state and last contact, and what
    each alive member owns (shards it leads and replicates, task queues)."""
    resp, views = call(address, wire.DEFAULT_NAMESPACE, _each_node)
    if as_json:
        print(render.to_json(render.cluster_status_json(resp, views)))
    else:
        out().print(render.cluster_status_view(resp, views))


@app.command("partition-drill")
def partition_drill(
    block: list[str] = typer.Option(
        [], "--block", metavar="HOST:PORT",
        help="A peer's gossip address (its `Gossip address` in `cluster status`); repeatable."),
    clear: bool = typer.Option(False, "--clear", help="End the drill on this node."),
    address: str = ADDRESS,
) -> None:
    """FAULT-INJECTION DRILL, not for normal operation: cut the node at --address off from
    the peers at --block, as if the network between them were cut: gossip, shard
    replication and requests forwarded between the nodes are dropped both ways (clients
    and workers connected to it are not). Run it on every node of one side (naming the
    other side) to partition the cluster; each run replaces the node's last drill;
    --clear ends it."""
    if bool(block) == clear:
        fail("give --block HOST:PORT (repeatable) to start a drill, or --clear to end it")
    call(address, wire.DEFAULT_NAMESPACE, lambda c: c.set_partition_drill(block))
    out().print(render.drill_line(address, block))
