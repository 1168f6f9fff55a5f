"""``shoal cluster ...``: the cluster as one node sees it.

Owns: ``shoal cluster status`` (every member with its state, incarnation, addresses and the
age of our last contact with it, plus the answering node's gossip health and counters), as
a rich table or, with ``--json``, one JSON object on stdout; and ``shoal cluster
partition-drill``, the fault-injection drill that cuts one node off from named peers
(gossip, replication and requests between the nodes).
Must not: import ``shoal.node`` (a client command stays light and runs anywhere).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from shoal import wire
from shoal.cli import render
from shoal.cli.remote import ADDRESS, JSON_OUT, call, fail, out

app = typer.Typer(help="Inspect the cluster.", no_args_is_help=True)

_STATE_STYLES = {"alive": "green", "suspect": "yellow", "dead": "red", "left": "dim"}


def status_json(resp: wire.ClusterStatusResponse) -> dict[str, Any]:
    """The ``--json`` shape: every field of the answer, ``null`` where unknown."""
    return dataclasses.asdict(resp)


def contact_text(age_s: float | None, is_self: bool) -> str:
    """``0.4s ago``, ``2m 5s ago``; ``-`` for ourselves or a member never heard from."""
    if is_self or age_s is None:
        return "-"
    if age_s < 60:
        return f"{age_s:.1f}s ago"
    minutes, seconds = divmod(int(age_s), 60)
    return f"{minutes}m {seconds}s ago"


def status_table(resp: wire.ClusterStatusResponse) -> Table:
    """Members as a table; the answering node is marked with ``*``."""
    table = Table(title=f"cluster {resp.cluster_name}: {resp.num_shards} shards, "
                        f"as seen by {resp.node} (health {resp.health_score})",
                  title_justify="left")
    for column in ("Name", "State", "Incarnation", "Gossip address", "API address",
                   "Last contact"):
        table.add_column(column, no_wrap=column != "Name")
    for m in resp.members:
        table.add_row(
            f"{m.name} *" if m.is_self else m.name,
            Text(m.state, style=_STATE_STYLES.get(m.state, "")),
            str(m.incarnation), m.gossip_addr, m.api_addr,
            contact_text(m.last_contact_age_s, m.is_self),
        )
    return table


def _ranges(ids: list[int]) -> str:
    """``0-3, 7, 9-10``: shard ids, compact."""
    parts: list[str] = []
    start = prev = None
    for i in ids:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(parts) or "-"


def owns_table(views: dict[str, wire.ClusterStatusResponse | str]) -> Table:
    """Per node: the shards it leads and replicates, and the task queues it holds."""
    table = Table(title="what each node owns", title_justify="left")
    for column in ("Name", "Leads", "Replicates", "Below R", "Task queues"):
        table.add_column(column)
    for name, view in sorted(views.items()):
        if isinstance(view, str):
            table.add_row(name, Text(view, style="red"), "", "", "")
            continue
        table.add_row(
            name, f"{len(view.shards_led)}: {_ranges(view.shards_led)}",
            f"{len(view.shards_replicated)}: {_ranges(view.shards_replicated)}",
            Text(_ranges(view.shards_under_replicated),
                 style="yellow" if view.shards_under_replicated else ""),
            ", ".join(view.task_queues) or "-")
    return table


async def _each_node(client: Any) -> tuple[wire.ClusterStatusResponse,
                                           dict[str, wire.ClusterStatusResponse | str]]:
    """The answering node's view, and every alive member's own (what it owns)."""
    import trio

    from shoal.sdk.client import Client

    resp = await client.service.call(wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest())
    views: dict[str, wire.ClusterStatusResponse | str] = {resp.node: resp}

    async def ask(member: wire.ClusterMember) -> None:
        try:
            with trio.fail_after(5):
                other = await Client.connect(member.api_addr)
                try:
                    views[member.name] = await other.service.call(
                        wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(), retry_for_s=0)
                finally:
                    await other.service.close()
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
        print(render.to_json({**status_json(resp), "nodes": {
            name: {"error": v} if isinstance(v, str) else {
                "shards_led": v.shards_led, "shards_replicated": v.shards_replicated,
                "shards_under_replicated": v.shards_under_replicated,
                "task_queues": v.task_queues, "routing": v.routing}
            for name, v in sorted(views.items())}}))
        return
    counts: dict[str, int] = {}
    for m in resp.members:
        counts[m.state] = counts.get(m.state, 0) + 1
    con = out()
    con.print(status_table(resp))
    con.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    con.print(owns_table(views))
    under = sorted({s for v in views.values() if not isinstance(v, str)
                    for s in v.shards_under_replicated})
    if under:
        con.print(f"[yellow]{len(under)} shard(s) below their replication factor: "
                  f"{_ranges(under)}[/yellow]")
    if resp.blocked_addrs:
        con.print(f"[yellow]partition drill active: cut off from "
                  f"{', '.join(resp.blocked_addrs)} (gossip, replication, requests)[/yellow] "
                  f"(`shoal cluster partition-drill --clear` ends it)")


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
    call(address, wire.DEFAULT_NAMESPACE, lambda c: c.service.call(
        wire.Op.NETWORK_FAULTS, wire.NetworkFaultsRequest(blocked_addrs=block)))
    out().print(f"partition drill on {address}: cut off from {', '.join(block)}"
                if block else f"partition drill on {address} cleared")
