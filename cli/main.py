"""The ``shoal`` command: typer app wiring the sub-commands together.

Owns: the top-level command tree. Each group lives in its own module (``cli/node.py``, ...).
Must not: import ``shoal.node`` at module level for client-side commands (start-up time).
"""

from __future__ import annotations

import typer

from shoal.cli import cluster as cluster_cmds
from shoal.cli import node as node_cmds
from shoal.cli import sim as sim_cmds
from shoal.cli import workflow as workflow_cmds

app = typer.Typer(
    name="shoal",
    help="shoal: durable execution on identical peers.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(cluster_cmds.app, name="cluster")
app.add_typer(node_cmds.app, name="node")
app.add_typer(sim_cmds.app, name="sim")
app.add_typer(workflow_cmds.app, name="workflow")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
