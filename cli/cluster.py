"""``shoal cluster ...``: the cluster as one node sees it.

Owns: ``shoal cluster status`` (every member with its state, incarnation, addresses and the
age of our last contact with it, plus the answering node's gossip health and counters), as
a rich table or, with ``--json``, one JSON object on stdout; and ``shoal cluster
partition-drill``, the fault-injection drill that cuts one node off from named peers.
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


@app.command("status")
def status(address: str = ADDRESS, as_json: bool = JSON_OUT) -> None:
    """Every member the node at --address knows, with state and last contact."""
    resp = call(address, wire.DEFAULT_NAMESPACE, lambda c: c.service.call(
        wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest()))
    if as_json:
        print(render.to_json(status_json(resp)))
        return
    counts: dict[str, int] = {}
    for m in resp.members:
        counts[m.state] = counts.get(m.state, 0) + 1
    con = out()
    con.print(status_table(resp))
    con.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    if resp.blocked_addrs:
        con.print(f"[yellow]partition drill active: gossip to and from "
                  f"{', '.join(resp.blocked_addrs)} is dropped[/yellow] "
                  f"(`shoal cluster partition-drill --clear` ends it)")


@app.command("partition-drill")
def partition_drill(
    block: list[str] = typer.Option(
        [], "--block", metavar="HOST:PORT",
        help="A peer's gossip address (its `Gossip address` in `cluster status`); repeatable."),
    clear: bool = typer.Option(False, "--clear", help="End the drill on this node."),
    address: str = ADDRESS,
) -> None:
    """FAULT-INJECTION DRILL, not for normal operation: make the node at --address drop
    all gossip to and from the peers at --block, as if the network between them were cut.
    Run it on every node of one side (naming the other side) to partition the cluster;
    each run replaces the node's last drill; --clear ends it."""
    if bool(block) == clear:
        fail("give --block HOST:PORT (repeatable) to start a drill, or --clear to end it")
    call(address, wire.DEFAULT_NAMESPACE, lambda c: c.service.call(
        wire.Op.GOSSIP_FAULTS, wire.GossipFaultsRequest(blocked_addrs=block)))
    out().print(f"partition drill on {address}: dropping gossip to and from {', '.join(block)}"
                if block else f"partition drill on {address} cleared")
