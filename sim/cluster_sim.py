"""Whole-cluster simulator: N nodes (gossip + ring + replication + history) in one process.

Owns: one seeded run of ``sim/cluster_node.py`` nodes over the fake network and clock
(``sim/network.py``): a founder creates the cluster (every shard bootstrapped on it as a
sole voter), the others join through gossip, and each node's steward moves every shard to
the ring's replica set (R = 3) by learner + snapshot + config change. Clients drive
workflows (start, activity completions, complete), each command proposed to whoever the
ring or the replica says leads the shard (a stale guess is retried with the hint; a lost
answer is retried with the same command, which the state machine deduplicates), and
remember what was acknowledged. Seeded faults run during the chaos phase: datagram loss,
delay, jitter and duplication, crashes that lose unsynced writes and restart from the
disk, partitions that heal, pauses, a node joining mid-run, and a node that dies for good
and is replaced once it has been dead past ``replace_after_s``.

Invariants 1 and 2 are checked after every step; at the end (faults healed, convergence
within ``liveness_s``) invariant 3 (every acknowledged write on every member of its shard),
4 and 5 (every member's histories), and every shard back at R voters on the ring's replica
set and serving (``sim/cluster_check.py``). One JSON object comes out, byte-identical per
seed. Must not: read the wall clock, use global random, iterate sets or ``hash()`` strings.

    python -m shoal.sim.cluster_sim --nodes 5 --seed 1 --steps 60000 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.node.replication import ReplicaConfig, RoleChanged
from shoal.ring.placement import placement
from shoal.sim.cluster_check import ClusterChecker
from shoal.sim.cluster_history import (
    ACTIVITY_COMPLETED, COMPLETED, STARTED, Command, ShardState,
)
from shoal.sim.cluster_node import ClusterNode, NodeTiming
from shoal.sim.network import Action, Delivered, LinkFaults, Network, TimerFired

CONVERGE_CHECK_S = 0.25  # how often the liveness phase checks for convergence
DURABILITY_CHECK_STEPS = 10  # invariant 3 on the disks every this many steps (and at crashes)
PLANTS = ("", "apply_twice", "ack_on_propose", "no_dedupe")


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """One run's settings; every field is printed with the results."""

    nodes: int = 5
    seed: int = 1
    steps: int = 60_000  # events of the chaos phase
    num_shards: int = 16
    rf: int = 3
    clients: int = 6
    activities: int = 3  # activity completions per workflow
    loss: float = 0.02
    duplicate: float = 0.01
    delay_s: float = 0.001
    jitter_s: float = 0.004
    fsync_s: float = 0.003
    crash_every_s: float = 4.0  # mean gap between crashes
    down_s: float = 1.5  # mean downtime
    partition_every_s: float = 6.0
    partition_s: float = 1.5
    pause_every_s: float = 8.0
    join: bool = True  # a new node joins after a quarter of the steps
    replace: bool = True  # a node dies for good after half of the steps
    replace_after_s: float = 5.0
    # The node that died for good restarts on its disk when the faults heal, long after it
    # was replaced (the 5-node integration test's restart): it must get its share back.
    comeback: bool = False
    client_timeout_s: float = 1.0
    liveness_s: float = 60.0  # after healing, convergence must happen within this
    plant: str = ""  # a deliberate bug, for the tests that show the checks can fail

    def command(self) -> str:
        """The command line that reproduces this run (with default faults)."""
        return (f"python -m shoal.sim.cluster_sim --nodes {self.nodes} --seed {self.seed} "
                f"--steps {self.steps}{' --comeback' if self.comeback else ''} --json")


@dataclass(slots=True)
class Client:
    """One client running workflows one after another."""

    cid: int
    wf: str = ""
    shard: int = 0
    cmds: list[Command] = field(default_factory=list)  # what is left of this workflow
    attempt: int = 0  # the current attempt's number; answers to older ones are ignored
    guess: dict[int, str] = field(default_factory=dict)  # shard -> believed leader
    idle: bool = True


@dataclass(slots=True)
class Counters:
    workflows_started: int = 0
    workflows_completed: int = 0
    acknowledged_writes: int = 0
    unknown_outcomes: int = 0
    not_leader_retries: int = 0
    crashes: int = 0
    partitions: int = 0
    pauses: int = 0


def shard_of(workflow_id: str, num_shards: int) -> int:
    """``hash(namespace, workflow_id) mod NUM_SHARDS`` with a stable hash (DESIGN §3)."""
    digest = hashlib.blake2b(b"default\x00" + workflow_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


class ClusterSim:
    """One seeded run; :meth:`run` returns the report."""

    def __init__(self, p: ClusterParams) -> None:
        assert p.nodes >= 3 and p.plant in PLANTS
        self.p = p
        self.rng = random.Random(p.seed)
        faults = LinkFaults(loss=p.loss, delay_s=p.delay_s, jitter_s=p.jitter_s,
                            duplicate=p.duplicate)
        self.net = Network(random.Random(self.rng.getrandbits(64)), faults)
        self.step = 0
        self.check = ClusterChecker(p.num_shards, self)
        self.c = Counters()
        self.swim_cfg = SwimConfig.small()
        self.replica_cfg = ReplicaConfig(
            heartbeat_interval_s=0.05, leader_timeout_s=0.5, prepare_timeout_s=0.5,
            max_inflight=4, append_entries_max=16, snapshot_timeout_s=1.0,
            compact_silent_s=1.0, compact_retain_entries=64, compact_lag_entries=16,
            learner_lag_entries=8)
        self.timing = NodeTiming(fsync_s=p.fsync_s, replace_after_s=p.replace_after_s)
        self.nodes: dict[str, ClusterNode] = {}
        self.retired: str | None = None  # the node that died for good
        self.joiner: str | None = None
        self.healed = False
        self.heal_at = 0.0
        self.converged_at: float | None = None
        self.clients = [Client(i) for i in range(p.clients)]
        self.next_wf = 0
        # (node, shard, epoch, index) -> (client, attempt, command)
        self.pending: dict[tuple[str, int, wire.Epoch, int], tuple[Client, int, Command]] = {}
        self.acked: list[tuple[int, Command]] = []
        for i in range(p.nodes):
            self._add_node(f"n{i}")

    @property
    def now(self) -> float:
        return self.net.now

    # --- nodes ----------------------------------------------------------------------------

    def _add_node(self, name: str) -> ClusterNode:
        node = ClusterNode(name, self.p.num_shards, self.p.rf, self.net, self,
                           random.Random(self.rng.getrandbits(64)), self.swim_cfg,
                           self.replica_cfg, self.timing)
        if self.p.plant == "no_dedupe":
            node.dedupe = False
        self.nodes[name] = node
        return node

    def _boot(self, name: str) -> None:
        seeds = [n for n in self.nodes if n != name]
        self.nodes[name].start(seeds, found=name == "n0" and self.now == 0.0)

    def _crash(self, name: str) -> None:
        node = self.nodes[name]
        if not node.up:
            return
        self._check_durability()  # what the crash may lose must already be safe elsewhere
        self.c.crashes += 1
        for shard in range(self.p.num_shards):
            self.check.set_serving(name, shard, False, self.now)
            self._fail_pending(name, shard)
        node.crash()

    def _restart(self, name: str) -> None:
        if not self.nodes[name].up and name != self.retired:
            self._boot(name)

    # --- hooks the nodes call ------------------------------------------------------------------

    def on_apply(self, node: str, shard: int, entry: wire.ReplEntry, prev_index: int,
                 state: ShardState) -> None:
        self.check.on_apply(node, shard, entry, prev_index, state)
        waiting = self.pending.pop((node, shard, entry.epoch, entry.index), None)
        if waiting is not None:
            client, attempt, cmd = waiting
            if entry.kind == wire.EntryKind.NORMAL and entry.payload == cmd:
                self._acked(client, attempt, cmd, entry.index)
            else:
                self._unknown(client, attempt)

    def on_role(self, node: str, shard: int, ev: RoleChanged) -> None:
        self.check.on_role(node, shard, ev, self.now)
        if not ev.serving:
            self._fail_pending(node, shard)

    def on_leader_send(self, node: str, boot: int, shard: int, epoch: wire.Epoch) -> None:
        self.check.on_leader_send(node, boot, shard, epoch)

    def on_install(self, node: str, shard: int, state: ShardState) -> None:
        self.check.on_install(node, shard, state)

    def on_released(self, node: str, shard: int) -> None:
        self.check.set_serving(node, shard, False, self.now)
        self._fail_pending(node, shard)

    # --- clients ---------------------------------------------------------------------------------

    def _next_workflow(self, client: Client) -> None:
        if self.healed:
            client.idle = True
            return
        client.idle = False
        client.wf = f"wf{self.next_wf}"
        self.next_wf += 1
        client.shard = shard_of(client.wf, self.p.num_shards)
        client.cmds = [(STARTED, client.wf, 0)]
        client.cmds += [(ACTIVITY_COMPLETED, client.wf, k) for k in range(1, self.p.activities + 1)]
        client.cmds.append((COMPLETED, client.wf, 0))
        self.c.workflows_started += 1
        self._attempt(client)

    def _ring_guess(self, shard: int) -> str | None:
        """Ask any node the ring's leader hint (its steward's view)."""
        up = [n for n, node in self.nodes.items() if node.up]
        if not up:
            return None
        steward = self.nodes[self.rng.choice(up)].steward
        assert steward is not None
        return steward.target(shard, self.now)[0]

    def _attempt(self, client: Client) -> None:
        client.attempt += 1
        attempt, cmd, shard = client.attempt, client.cmds[0], client.shard
        target = client.guess.get(shard) or self._ring_guess(shard)
        node = self.nodes.get(target) if target else None
        if node is None or not node.up or self.net.paused(node.name):
            # No answer from that node: try the ring's guess after a timeout.
            client.guess.pop(shard, None)
            self._later(self.p.client_timeout_s, client, attempt)
            return
        hosted = node.shards.get(shard)
        if hosted is None or not hosted.core.serving:
            # "not leader, try X": follow the hint, never surfaced to the workflow's caller.
            self.c.not_leader_retries += 1
            hint = hosted.core.leader if hosted is not None else None
            if hint is not None and hint != node.name:
                client.guess[shard] = hint
            else:
                client.guess.pop(shard, None)
            self._later(0.02 if hint else 0.1, client, attempt)
            return
        core = hosted.core
        index, out = core.propose(cmd, self.now)
        self.pending[(node.name, shard, core.epoch, index)] = (client, attempt, cmd)
        if self.p.plant == "ack_on_propose":
            self._acked(client, attempt, cmd, index)  # the bug: answered before it commits
        node.drive(shard, out)
        self.net.call_at(self.now + self.p.client_timeout_s,
                         lambda: self._timeout(client, attempt), "client-timeout")

    def _later(self, delay_s: float, client: Client, attempt: int) -> None:
        def retry() -> None:
            if client.attempt == attempt:
                self._attempt(client)
        self.net.call_at(self.now + delay_s, retry, "client-retry")

    def _timeout(self, client: Client, attempt: int) -> None:
        if client.attempt == attempt:
            self._unknown(client, attempt)

    def _unknown(self, client: Client, attempt: int) -> None:
        """No definite answer: retry the same command (the state machine dedupes it)."""
        if client.attempt != attempt:
            return
        self.c.unknown_outcomes += 1
        client.guess.pop(client.shard, None)
        self._later(0.02, client, attempt)

    def _acked(self, client: Client, attempt: int, cmd: Command, index: int) -> None:
        if client.attempt != attempt or not client.cmds or client.cmds[0] != cmd:
            return
        client.attempt += 1  # later answers to this attempt are stale
        self.c.acknowledged_writes += 1
        self.acked.append((client.shard, cmd))
        self.check.on_ack(client.shard, index)
        client.cmds.pop(0)
        if not client.cmds:
            self.c.workflows_completed += 1
            self.net.call_at(self.now + 0.01 + 0.04 * self.rng.random(),
                             lambda: self._next_workflow(client), "client-next")
        else:
            self.net.call_at(self.now + 0.005 + 0.02 * self.rng.random(),
                             lambda: self._attempt(client), "client-step")

    def _fail_pending(self, node: str, shard: int) -> None:
        for key in [k for k in self.pending if k[0] == node and k[1] == shard]:
            client, attempt, _ = self.pending.pop(key)
            self._unknown(client, attempt)

    # --- faults ------------------------------------------------------------------------------------

    def _every(self, mean_s: float, fn: Any, label: str) -> None:
        def fire() -> None:
            if not self.healed:
                fn()
                self._every(mean_s, fn, label)
        self.net.call_at(self.now + self.rng.expovariate(1 / mean_s), fire, label)

    def _counted(self) -> list[str]:
        """Nodes that belong to the cluster now (started, not retired)."""
        return [n for n, node in self.nodes.items()
                if n != self.retired and (node.up or node.disks)]

    def _fault_crash(self) -> None:
        counted = self._counted()
        up = [n for n in counted if self.nodes[n].up]
        down = len(counted) - len(up)
        if not up or down + 1 > (len(counted) - 1) // 2:
            return  # keep a majority of the cluster up, so there is progress to check
        victim = self.rng.choice(up)
        self._crash(victim)
        self.net.call_at(self.now + self.rng.expovariate(1 / self.p.down_s),
                         lambda: self._restart(victim), "restart")

    def _fault_partition(self) -> None:
        names = [n for n, node in self.nodes.items() if node.up]
        side = [n for n in names if self.rng.random() < 0.5]
        self.c.partitions += 1
        self.net.partition(side)
        self.net.call_at(self.now + self.rng.expovariate(1 / self.p.partition_s),
                         self.net.heal, "heal")

    def _fault_pause(self) -> None:
        up = [n for n, node in self.nodes.items() if node.up]
        self.c.pauses += 1
        self.net.pause(self.rng.choice(up), self.now + 0.4 * self.rng.random())

    def _script(self) -> None:
        """The scripted events, at fixed fractions of the chaos phase."""
        if self.p.join and self.joiner is None and self.step >= self.p.steps // 4:
            self.joiner = f"n{len(self.nodes)}"
            self._add_node(self.joiner)
            self._boot(self.joiner)
        if self.p.replace and self.retired is None and self.step >= self.p.steps // 2 and \
                self.step % 200 == 0 and self._at_full_strength():
            up = [n for n, node in self.nodes.items() if node.up and n != self.joiner]
            if up:
                self.retired = self.rng.choice(up)
                self._crash(self.retired)

    def _at_full_strength(self) -> bool:
        """Every shard serving with R voters. A node only dies for good then: while a
        shard grows from its founder's 1 voter to R, one at a time, it passes through 2
        voters, and losing one of those for good is beyond what single-node changes can
        recover from (Ongaro's thesis §4.1; an operator would have to step in)."""
        want = min(self.p.rf, sum(1 for node in self.nodes.values() if node.up))
        for shard in range(self.p.num_shards):
            leader = self._serving_leader(shard)
            if leader is None or len(leader.shards[shard].core.config.voters) < want:
                return False
        return True

    # --- running ---------------------------------------------------------------------------------

    def _handle(self, ev: Any) -> None:
        if isinstance(ev, Delivered):
            node = self.nodes[ev.dst]
            if node.up:
                node.on_message(ev.src, ev.msg, ev.reliable)
        elif isinstance(ev, TimerFired):
            node = self.nodes[ev.node]
            if node.up:
                node.on_timer(ev.key)

    def _advance(self) -> None:
        ev = self.net.step()
        assert ev is not None, "the simulation ran out of events"
        self.step += 1
        if not isinstance(ev, Action):
            self._handle(ev)
        if self.step % DURABILITY_CHECK_STEPS == 0:
            self._check_durability()

    def _check_durability(self) -> None:
        self.check.check_durability({n: node.disks for n, node in self.nodes.items()})

    def _heal(self) -> None:
        """End of the chaos: heal the network, restart every crashed node (not the retired
        one), stop new workflows; the ones in flight must finish."""
        self.healed = True
        self.heal_at = self.now
        self.net.heal()
        self.net.faults = LinkFaults(delay_s=self.p.delay_s, jitter_s=self.p.jitter_s)
        for name in list(self.nodes):
            self._restart(name)
        if self.p.comeback and self.retired is not None and not self.nodes[self.retired].up:
            self._boot(self.retired)

    def _converged(self) -> bool:
        """Liveness: clients done, gossip agrees, every shard served by the ring's first
        member on the ring's replica set with every voter caught up."""
        if not all(c.idle for c in self.clients):
            return False
        up = tuple(sorted(n for n, node in self.nodes.items() if node.up))
        if any(self.nodes[n].alive_view() != up for n in up):
            return False
        place = placement(up, self.p.num_shards, min(self.p.rf, len(up)))
        for shard in range(self.p.num_shards):
            leader = self._serving_leader(shard)
            if leader is None or leader.name != place.replica_set(shard)[0]:
                return False
            core = leader.shards[shard].core
            cfg = core.config
            if sorted(cfg.voters) != sorted(place.replica_set(shard)) or cfg.learners:
                return False
            top = core.log.last_index
            if core.commit != top:
                return False
            for v in cfg.voters:
                hosted = self.nodes[v].shards.get(shard)
                if hosted is None or hosted.state.index != top:
                    return False
        return True

    def _serving_leader(self, shard: int) -> ClusterNode | None:
        for node in self.nodes.values():
            hosted = node.shards.get(shard) if node.up else None
            if hosted is not None and hosted.core.serving:
                return node
        return None

    def run(self) -> dict[str, Any]:
        """Chaos for ``steps`` events, then heal and require convergence; the report."""
        self.net.call_at(0.0, lambda: self._boot("n0"), "found")
        for name in list(self.nodes)[1:]:
            self.net.call_at(0.05 * int(name[1:]), lambda name=name: self._boot(name), "join")
        for client in self.clients:
            self.net.call_at(1.0 + 0.01 * client.cid,
                             lambda client=client: self._next_workflow(client), "client")
        self._every(self.p.crash_every_s, self._fault_crash, "crash")
        self._every(self.p.partition_every_s, self._fault_partition, "partition")
        self._every(self.p.pause_every_s, self._fault_pause, "pause")
        if self.p.plant == "apply_twice":
            self.nodes["n0"].apply_twice = True
        while self.step < self.p.steps:
            self._advance()
            self._script()
        self._heal()
        deadline = self.now + self.p.liveness_s
        next_check = self.now
        while self.now < deadline:
            self._advance()
            if self.now >= next_check:
                next_check = self.now + CONVERGE_CHECK_S
                if self._converged():
                    self.converged_at = self.now
                    break
        if self.converged_at is None:
            self.check.violate(f"liveness: no convergence within {self.p.liveness_s}s of "
                               "healing")
        self.check.check_final(self.acked, self._members())
        return self.report()

    def _members(self) -> dict[int, list[tuple[str, ShardState]]]:
        """Every shard's current members (the serving leader's config) and their states."""
        members: dict[int, list[tuple[str, ShardState]]] = {}
        for shard in range(self.p.num_shards):
            leader = self._serving_leader(shard)
            voters = leader.shards[shard].core.config.voters if leader else ()
            members[shard] = [(v, self.nodes[v].shards[shard].state) for v in voters
                              if self.nodes[v].up and shard in self.nodes[v].shards]
        return members

    def report(self) -> dict[str, Any]:
        recs = self.check.shards
        ever = len(self.nodes)
        gossip = sum(n.gossip_sent for n in self.nodes.values())
        repl = sum(n.repl_sent for n in self.nodes.values())
        per = max(self.now, 1e-9) * ever
        return {
            "params": asdict(self.p),
            "command": self.p.command(),
            "violation_count": self.check.violation_count,
            "violations": self.check.violations,
            **asdict(self.c),
            "elections": sum(r.elections for r in recs),
            "failovers": sum(r.failovers for r in recs),
            "max_leaderless_s": _r(max(r.max_leaderless_s for r in recs)),
            "max_leaderless_s_per_shard": [_r(r.max_leaderless_s) for r in recs],
            "committed_entries": sum(len(r.chain) - 1 for r in recs),
            "joined": self.joiner,
            "retired": self.retired,
            "steps": self.step,
            "sim_time_s": _r(self.now),
            "healed_at_s": _r(self.heal_at),
            "converged_after_heal_s": None if self.converged_at is None
            else _r(self.converged_at - self.heal_at),
            "msgs_per_node_s": _r((gossip + repl) / per),
            "gossip_msgs_per_node_s": _r(gossip / per),
            "replication_msgs_per_node_s": _r(repl / per),
        }


def _r(x: float) -> float:
    return round(x, 3)


def run_cluster_sim(nodes: int = 5, seed: int = 1, steps: int = 60_000,
                    **overrides: Any) -> dict[str, Any]:
    """Run one seeded simulation; the report's ``violation_count`` must be 0."""
    return ClusterSim(ClusterParams(nodes=nodes, seed=seed, steps=steps, **overrides)).run()


def dumps(report: dict[str, Any]) -> str:
    """The canonical JSON text of a report (sorted keys: byte-identical per seed)."""
    return json.dumps(report, sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shoal sim cluster", description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60_000, help="events of the chaos phase")
    ap.add_argument("--seeds", type=int, default=1, help="run seeds seed..seed+K-1")
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--loss", type=float, default=0.02)
    ap.add_argument("--comeback", action="store_true",
                    help="the node that died for good restarts on its disk at the heal")
    ap.add_argument("--json", action="store_true", help="one JSON object per seed")
    args = ap.parse_args(argv)
    failed = 0
    for seed in range(args.seed, args.seed + args.seeds):
        rep = run_cluster_sim(args.nodes, seed, args.steps, num_shards=args.shards,
                              loss=args.loss, comeback=args.comeback)
        if args.json:
            print(dumps(rep))
        else:
            _print_human(rep)
        if rep["violation_count"]:
            failed += 1
            print(f"reproduce: {rep['command']}", file=sys.stderr)
    return 1 if failed else 0


def _print_human(rep: dict[str, Any]) -> None:
    p = rep["params"]
    print(f"seed={p['seed']} nodes={p['nodes']} steps={p['steps']} shards={p['num_shards']} "
          f"loss={p['loss']} joined={rep['joined']} retired={rep['retired']}")
    print(f"  violations={rep['violation_count']} workflows={rep['workflows_completed']}/"
          f"{rep['workflows_started']} acked={rep['acknowledged_writes']} "
          f"failovers={rep['failovers']} max_leaderless_s={rep['max_leaderless_s']} "
          f"converged_after_heal_s={rep['converged_after_heal_s']} "
          f"msgs_per_node_s={rep['msgs_per_node_s']}")
    for v in rep["violations"][:20]:
        print("  VIOLATION", v)


if __name__ == "__main__":
    sys.exit(main())
