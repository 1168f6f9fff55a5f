"""``make chaos``: a kill / restart / partition loop over real node processes, then checks.

Usage (from the repository root)::

    PYTHONPATH=tests .venv/bin/python -m chaos.chaos_run --nodes 5 --seconds 300 --seed 1 [--json]

Starts ``--nodes`` ``shoal node start`` processes (small gossip preset, replicated shards,
R = 3), waits until they are balanced, and runs two workers (on different nodes) and a
client connected to every node that starts ``ChaosChain`` workflows continuously (two
signals, three activities, a timer). Meanwhile, on a schedule drawn from ``--seed``, it
``kill -9``s a node, restarts killed nodes (``--join`` to a live node), SIGTERMs a node and
starts it again, and cuts a node off from the others by the partition drill. Before each fault it
waits for balance (no shard below R) and it never has more than a minority of nodes down.
When ``--seconds`` have passed it stops the faults, restarts every node, waits for balance
and for every workflow, checks the invariants (``workload.Workload.check``) and prints one
JSON report. The exit status is 1 when any invariant was violated.

Other options: ``--rate`` (workflows/s), ``--faults kill9,sigterm,partition`` (which kinds),
``--min-kills N`` (the first N faults are kills, and the run goes on until they are done),
``--min-down S`` (a killed node stays down at least S; the default 0 lets a restart beat
failure detection), ``--replace-after S`` (the nodes' flag), ``--dir D`` (keep the data dirs
and node logs there; they are kept anyway when something was violated).

It lives in ``tests/chaos/`` rather than ``bench/``: it reuses the integration tests' node
and history helpers (``tests/helpers``), which are not part of the installed ``shoal``
package that ``bench/`` belongs to, and it reports correctness rather than speed.

The partition drill is a full cut between the node and the others: gossip, replication,
forwarded requests and task hand-offs are dropped both ways (clients and workers connected
to the cut-off node still reach it).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from shoal.client import Client
from shoal.worker import Worker

from chaos.faults import FAULT_KINDS, ChaosCluster, Schedule
from chaos.workload import ChaosChain, Workload, double
from helpers.node_proc import NodeProcess, free_port

PARTITION_NOTE = ("the partition drill is a full cut between the node and the others: "
                  "gossip, replication, forwarded requests and task hand-offs, both ways")


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """One chaos run. Times are seconds."""

    nodes: int = 5
    seconds: float = 300.0  # the fault phase; start-up and the drain come on top
    seed: int = 1
    rate_per_s: float = 1.5  # workflows started per second during the fault phase
    min_kills: int = 0  # kill -9s owed even after ``seconds`` (the first faults are kills)
    kinds: tuple[str, ...] = FAULT_KINDS
    replace_after_s: float = 4.0  # a dead member's replicas move elsewhere after this
    num_shards: int = 16
    balance_timeout_s: float = 60.0  # before each fault
    heal_timeout_s: float = 120.0  # balance after the faults stop
    drain_timeout_s: float = 180.0  # every workflow's result after the heal
    keep_dir: Path | None = None  # data dirs and node logs kept here (else a temp dir)
    echo: bool = False  # print each fault to stderr as it happens
    # A killed node stays down at least this long. 0 lets a restart beat failure detection
    # (~2 s with the small preset), which loses tasks parked in its matching: see
    # repro_lost_tasks.py.
    min_down_s: float = 0.0


class _CountingHandler(logging.Handler):
    """Warnings and errors the client and workers logged during the run, by logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_logger: Counter[str] = Counter()
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.by_logger[f"{record.levelname} {record.name}"] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:300])


async def _fault_loop(cluster: ChaosCluster, sched: Schedule, cfg: ChaosConfig) -> None:
    """Faults until ``cfg.seconds`` are up and ``cfg.min_kills`` kills are done."""
    end = time.monotonic() + cfg.seconds
    hard_end = end + 2 * cfg.balance_timeout_s + 60  # owed kills never run on for ever
    kills = 0
    while (time.monotonic() < end or kills < cfg.min_kills) and time.monotonic() < hard_end:
        await trio.sleep(sched.gap())
        action = sched.next_action(len(cluster.down), must_kill=kills < cfg.min_kills)
        if action == "restart":
            await cluster.restart(sched.rng.choice(sorted(cluster.down)))
            continue
        if not await cluster.wait_balanced(cfg.balance_timeout_s, everyone_leads=False):
            continue  # noted in the log; no new fault on an unbalanced cluster
        target = sched.rng.choice([i for i in range(len(cluster.nodes)) if i not in cluster.down])
        if action == "kill9":
            cluster.kill9(target)
            kills += 1
        elif action == "sigterm":
            await cluster.sigterm_and_restart(target)
        else:
            await cluster.partition(target, sched.rng.uniform(*sched.hold_s))


def _start_nodes(root: Path, cfg: ChaosConfig, base: list[str]) -> list[NodeProcess]:
    seed_port = free_port()
    nodes = [NodeProcess(root / "n0", port=seed_port, num_shards=cfg.num_shards, extra=base)]
    nodes += [NodeProcess(root / f"n{i}", port=free_port(), num_shards=cfg.num_shards,
                          extra=[*base, "--join", f"127.0.0.1:{seed_port}"])
              for i in range(1, cfg.nodes)]
    return nodes


async def run_chaos(cfg: ChaosConfig) -> dict[str, Any]:
    """Run the chaos loop described in the module docstring; the report as a dict
    (``violation_count`` must be 0)."""
    assert cfg.nodes >= 3, "R = 3 needs three nodes"
    assert set(cfg.kinds) <= set(FAULT_KINDS), cfg.kinds
    root = cfg.keep_dir or Path(tempfile.mkdtemp(prefix="shoal-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    counting = _CountingHandler()
    logging.getLogger().addHandler(counting)
    base = ["--gossip-preset", "small", "--shard-log", "replicated",
            "--replace-after", str(cfg.replace_after_s)]
    nodes = _start_nodes(root, cfg, base)
    t0 = time.monotonic()
    cluster = ChaosCluster(nodes, base, t0, echo=cfg.echo, min_down_s=cfg.min_down_s)
    violations: list[str] = []
    report: dict[str, Any] = {"seed": cfg.seed, "nodes": cfg.nodes, "note": PARTITION_NOTE,
                              "config": {k: (list(v) if isinstance(v, tuple) else v)
                                         for k, v in asdict(cfg).items()
                                         if k not in ("keep_dir", "echo")}}
    clients: list[Client] = []
    try:
        await nodes[0].start_async()
        async with trio.open_nursery() as nursery:
            for n in nodes[1:]:
                nursery.start_soon(n.start_async)
        if not await cluster.wait_balanced(cfg.heal_timeout_s, everyone_leads=True):
            raise RuntimeError(f"the new cluster did not balance: {cluster.log[-1]}")
        report["startup_s"] = round(time.monotonic() - t0, 2)
        addrs = [n.address for n in nodes]
        clients = [await Client.connect(addrs)]
        clients += [await Client.connect(addrs[i:] + addrs[:i]) for i in (1, 2)]
        report.update(await _run_under_faults(cfg, cluster, clients, violations))
    except Exception as exc:  # noqa: BLE001 - a run that could not finish still reports
        violations.append(f"run aborted: {_innermost(exc)}")
    finally:
        for c in clients:
            await c.service.close()
        for n in nodes:
            n.kill()
        logging.getLogger().removeHandler(counting)
    waits = sorted(cluster.balance_waits_s)
    report.update({
        "faults": cluster.counts(), "fault_log": cluster.log,
        "balance_waits_s": {"count": len(waits), "max": waits[-1] if waits else None,
                            "p50": waits[len(waits) // 2] if waits else None},
        "client_log": {"counts": dict(counting.by_logger), "samples": counting.samples},
        "node_log": _node_logs(nodes, root),
        "violations": violations[:100], "violation_count": len(violations),
        "elapsed_s": round(time.monotonic() - t0, 1)})
    if violations or cfg.keep_dir:
        report["data_dir"] = str(root)  # node logs are there: node-<i>.log
    else:
        shutil.rmtree(root, ignore_errors=True)
    return report


async def _run_under_faults(cfg: ChaosConfig, cluster: ChaosCluster, clients: list[Client],
                            violations: list[str]) -> dict[str, Any]:
    """Workers on clients[1] and clients[2], workflows started through clients[0] while the
    faults run; then the heal, the drain and the checks. Appends to ``violations``; returns
    the report's workload and phase fields."""
    sched = Schedule(rng=random.Random(cfg.seed), kinds=cfg.kinds,
                     max_down=(cfg.nodes - 1) // 2)
    tq = f"chaos-{uuid.uuid4()}"
    workload = Workload(clients[0], tq, cfg.seed, cfg.rate_per_s)
    healed, heal_s, t_drain = False, 0.0, float("nan")
    async with Worker(clients[1], task_queue=tq, workflows=[ChaosChain], activities=[double]), \
            Worker(clients[2], task_queue=tq, workflows=[ChaosChain], activities=[double]):
        with trio.CancelScope() as drain:
            async with trio.open_nursery() as drivers:
                stop = trio.Event()
                drivers.start_soon(workload.start_until, drivers, stop)
                await _fault_loop(cluster, sched, cfg)
                stop.set()
                t_heal = time.monotonic()
                for i in sorted(cluster.down):
                    await cluster.restart(i)
                healed = await cluster.wait_balanced(cfg.heal_timeout_s, everyone_leads=True)
                heal_s = time.monotonic() - t_heal
                if not healed:
                    violations.append(f"not balanced {cfg.heal_timeout_s}s after the "
                                      f"faults stopped: {cluster.log[-1]}")
                t_drain = time.monotonic()
                workload.give_up_at = t_drain + cfg.drain_timeout_s
                # Past the give-up time a driver still in a call is cut off: "no result".
                drain.deadline = trio.current_time() + cfg.drain_timeout_s + 70
        drain_s = time.monotonic() - t_drain
        with trio.fail_after(600):
            violations += await workload.check()
    return {"workflows": workload.summary(), "client_calls": workload.stats.as_json(),
            "healed": healed, "heal_s": round(heal_s, 2), "drain_s": round(drain_s, 2)}


def _innermost(exc: BaseException) -> str:
    """What went wrong, named: trio wraps a task's error in (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _node_logs(nodes: list[NodeProcess], root: Path) -> dict[str, Any]:
    """Write each node's log (every life) to ``root/node-<i>.log``; count its ERROR lines
    and tracebacks (a WARNING may carry one for a retried operation)."""
    errors: dict[str, int] = {}
    tracebacks: dict[str, int] = {}
    samples: list[str] = []
    for i, n in enumerate(nodes):
        lines = list(n.log_lines)
        (root / f"node-{i}.log").write_text("".join(lines))
        bad = [line for line in lines if " ERROR " in line]
        errors[f"node-{i}"] = len(bad)
        tracebacks[f"node-{i}"] = sum(1 for line in lines if line.startswith("Traceback"))
        samples += [f"node-{i}: {line.strip()[:300]}" for line in bad[:3]]
    return {"errors": errors, "tracebacks": tracebacks, "error_samples": samples[:10]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.chaos_run", description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--seconds", type=float, default=300.0, help="length of the fault phase")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=1.5, help="workflows started per second")
    p.add_argument("--min-kills", type=int, default=0)
    p.add_argument("--faults", default=",".join(FAULT_KINDS),
                   help=f"comma-separated kinds among {', '.join(FAULT_KINDS)}")
    p.add_argument("--replace-after", type=float, default=4.0)
    p.add_argument("--num-shards", type=int, default=16)
    p.add_argument("--min-down", type=float, default=0.0,
                   help="seconds a killed node stays down at least (0: restarts may beat "
                        "failure detection)")
    p.add_argument("--dir", type=Path, default=None, help="keep data and node logs here")
    p.add_argument("--json", action="store_true", help="print only the JSON report, one line")
    args = p.parse_args(argv)
    cfg = ChaosConfig(nodes=args.nodes, seconds=args.seconds, seed=args.seed,
                      rate_per_s=args.rate, min_kills=args.min_kills,
                      kinds=tuple(k for k in args.faults.split(",") if k),
                      replace_after_s=args.replace_after, num_shards=args.num_shards,
                      keep_dir=args.dir, echo=not args.json, min_down_s=args.min_down)
    command = " ".join(["PYTHONPATH=tests", sys.executable, "-m", "chaos.chaos_run",
                        *(argv if argv is not None else sys.argv[1:])])
    print(f"chaos run seed={cfg.seed} nodes={cfg.nodes} seconds={cfg.seconds} "
          f"faults={','.join(cfg.kinds)}; to repeat: {command}", file=sys.stderr)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = trio.run(run_chaos, cfg)
    report["command"] = command
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(json.dumps(report, indent=2, sort_keys=True))
        verdict = "OK" if report["violation_count"] == 0 else "VIOLATIONS"
        print(f"{verdict}: {report['violation_count']} violations, faults {report.get('faults')}, "
              f"workflows {report.get('workflows')}", file=sys.stderr)
    return 1 if report["violation_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
