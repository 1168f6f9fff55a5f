"""``shoal sim ...``: the deterministic simulators (DESIGN §9).

Owns: exposing each simulator's own command line under ``shoal sim``. The options belong to
the simulator modules (``sim/gossip_sim.py``, ``sim/replication_sim.py``,
``sim/cluster_sim.py``); this module passes
them through unchanged so there is one definition of each. Must not: run a simulation itself.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Deterministic simulations: same seed, same output, byte for byte.",
                  no_args_is_help=True)

_PASS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command("gossip", context_settings=_PASS, add_help_option=False)
def gossip(ctx: typer.Context) -> None:
    """SWIM + Lifeguard over a fake network: --nodes N --seed S --loss P [--pause S] [--json].

    Pass --help for every option.
    """
    from shoal.sim.gossip_sim import main

    raise typer.Exit(main(list(ctx.args)) or 0)


@app.command("replication", context_settings=_PASS, add_help_option=False)
def replication(ctx: typer.Context) -> None:
    """Replica groups with faults: --replicas R --seed S --steps N [--json].

    Pass --help for every option.
    """
    from shoal.sim.replication_sim import main

    raise typer.Exit(main(list(ctx.args)) or 0)


@app.command("cluster", context_settings=_PASS, add_help_option=False)
def cluster(ctx: typer.Context) -> None:
    """Whole nodes (gossip + ring + replication + history) with seeded faults:
    --nodes N --seed S [--steps N] [--seeds K] [--json].

    Pass --help for every option.
    """
    from shoal.sim.cluster_sim import main

    raise typer.Exit(main(list(ctx.args)) or 0)
