"""Replication simulator: one shard group of R replicas (plus spares) in one process.

Owns: a seeded run of :class:`shoal.node.replication.Replica` cores over the shared fake
network and clock (``sim/network.py``): datagram loss, delay, jitter (reordering) and
duplication, partitions, pauses, crashes that lose every write not yet fsynced, restarts
from what was durable, membership changes (a spare replaces a voter), a stand-in for the
ring that names the leader (and sometimes hands leadership over), and clients that write
and read. After every step it checks DESIGN §4 invariants 1-3; at the end, after healing
every fault and requiring convergence within a bound, it checks linearizability of the
client history (``sim/replication_check.py``).

Run: ``python -m shoal.sim.replication_sim --replicas 3 --seed 7 --steps 20000 [--json]``.
Must not: read the wall clock, use global random, iterate sets, or hash strings with hash().
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from shoal import wire
from shoal.node.replication import (
    Output, PersistedState, Replica, ReplicaConfig, Role, SnapshotInstall,
)
from shoal.sim.network import Action, Delivered, LinkFaults, Network, TimerFired
from shoal.sim.replication_check import EMPTY, Op, check_log_history, digest_step
from shoal.sim.replication_node import SimDisk, SimNode, SmState

ReplicaFactory = Callable[..., Replica]


@dataclass(frozen=True, slots=True)
class SimParams:
    """One run's settings; every field is printed with the results."""

    replicas: int = 3
    spares: int = 2
    seed: int = 0
    steps: int = 20_000
    loss: float = 0.05
    duplicate: float = 0.02
    delay_s: float = 0.002
    jitter_s: float = 0.008
    fsync_s: float = 0.003  # uniform in [fsync_s/3, fsync_s]
    crash_every_s: float = 2.0  # mean gap between crashes
    down_s: float = 1.0  # mean downtime
    partition_every_s: float = 3.0
    partition_s: float = 1.0
    pause_every_s: float = 4.0
    reconfig_every_s: float = 3.0
    handoff_every_s: float = 2.5  # the ring names another leader
    clients: int = 3
    read_ratio: float = 0.3
    client_timeout_s: float = 1.0
    liveness_s: float = 30.0  # after healing, convergence must happen within this
    wire_codec: bool = False  # round-trip every message through wire.encode_repl


@dataclass(slots=True)
class Counters:
    commits: int = 0  # client writes acknowledged
    reads: int = 0
    unknown: int = 0
    leader_changes: int = 0
    crashes: int = 0
    partitions: int = 0
    pauses: int = 0
    reconfigs: int = 0
    snapshots: int = 0
    dropped: int = 0  # replicas deleted after they were told they were removed
    latencies: list[float] = field(default_factory=list)


class ReplicationSim:
    """One seeded run. ``run()`` returns the result dict."""

    def __init__(self, params: SimParams, factory: ReplicaFactory = Replica) -> None:
        self.p = params
        self.factory = factory
        self.rng = random.Random(params.seed)
        faults = LinkFaults(loss=params.loss, delay_s=params.delay_s, jitter_s=params.jitter_s,
                            duplicate=params.duplicate)
        self.net = Network(random.Random(self.rng.getrandbits(64)), faults)
        self.cfg = ReplicaConfig(heartbeat_interval_s=0.05, leader_timeout_s=0.5,
                                 prepare_timeout_s=0.5, max_inflight=4, append_entries_max=16,
                                 snapshot_timeout_s=1.0, compact_silent_s=1.0,
                                 compact_retain_entries=64,
                                 compact_lag_entries=16, learner_lag_entries=8)
        names = [f"n{i}" for i in range(params.replicas + params.spares)]
        self.target: tuple[str, ...] = tuple(names[: params.replicas])
        self.nodes = {n: SimNode(n) for n in names}
        self.violations: list[str] = []
        self.c = Counters()
        self.now_step = 0
        # Ledger of what has been applied anywhere: the committed log, index -> entry.
        self.ledger: list[wire.ReplEntry | None] = [None]
        self.chain: list[str] = [EMPTY]  # digest of the whole log up to each index
        self.committed_config = wire.ShardConfig(voters=self.target)
        self.client_log: list[int] = []  # committed client values in order
        self.leaders: dict[wire.Epoch, str] = {}
        self.designated = self.target[0]
        self.ops: list[Op] = []
        self.pending: dict[tuple[str, wire.Epoch, int], Op] = {}  # (node, epoch, index)
        self.acked_max = 0  # highest log index of an acknowledged write
        self.next_value = 1
        self.healed = False
        self.converged_at: float | None = None
        boot = wire.ShardConfig(voters=self.target)
        for n in names:
            self._start(n, PersistedState())
            if n in self.target:
                self._drive(n, self.nodes[n].core.bootstrap(boot))

    # --- node lifecycle -------------------------------------------------------------------

    def _start(self, name: str, state: PersistedState) -> None:
        sn = self.nodes[name]
        sn.core = self.factory(name, 0, self.cfg, random.Random(self.rng.getrandbits(64)), state)
        sn.up = True
        sn.sm = sn.disk.applied_state
        self._drive(name, sn.core.reconfigure(self.target, self.net.now))
        self.net.set_timer(name, "tick", self.net.now + self.rng.random() * 0.025)

    def _crash(self, name: str) -> None:
        sn = self.nodes[name]
        if not sn.up:
            return
        self.c.crashes += 1
        self._fail_pending(name)
        sn.crash()
        self.net.crash(name)
        if name == self.designated:
            self.net.call_at(self.net.now + 0.3, self._redesignate, "redesignate")

    def _restart(self, name: str) -> None:
        sn = self.nodes[name]
        if sn.up:
            return
        self.net.restart(name)
        self._start(name, sn.disk.persisted_state())

    # --- the driver: carry out an Output like the real one must --------------------------

    def _drive(self, name: str, out: Output) -> None:
        sn = self.nodes[name]
        now = self.net.now
        if out.install is not None and isinstance(out.install.data, dict):
            # It went through the wire codec: snapshot data arrives as a plain map.
            out.install = SnapshotInstall(out.install.meta, SmState(**out.install.data))
        if out.hard_state or out.install or out.persist or out.compact:
            done_at = max(now, sn.disk_busy) + self.p.fsync_s * (1 + 2 * self.rng.random()) / 3
            sn.disk_busy = done_at
            inc = sn.inc
            write = (out.hard_state, out.install, list(out.persist), out.compact, list(out.send))
            self.net.call_at(done_at, lambda: self._write_done(name, inc, write), "fsync")
        else:
            self._send_all(name, out.send)
        if out.install is not None:
            data = out.install.data
            self._check_snapshot(name, out.install.meta.index, data)
            sn.sm = data
        for e in out.apply:
            self._apply(name, e)
        if out.apply:
            self._durable_apply(name, sn.sm)
        for r in out.reads:
            self._read_done(r.ctx, sn.sm)
        for ctx in out.read_failures:
            ctx.status = "fail"
        for ev in out.events:
            self._on_role(name, ev)
        for peer in out.snapshot_to:
            self.c.snapshots += 1
            self._drive(name, sn.core.send_snapshot(peer, sn.sm.index, sn.sm, now))
        if sn.core is not None and sn.core.removed:
            self._drop_removed(name)

    def _drop_removed(self, name: str) -> None:
        """As a node does with a replica told it was removed: delete it with its data (the
        durability check then shows whether that ever loses a committed write), and host
        an empty one in its place for the leader to add back if it wants."""
        sn = self.nodes[name]
        self.c.dropped += 1
        self._fail_pending(name)
        sn.inc += 1  # its writes in flight land before the delete: as if lost
        sn.disk, sn.dmatch = SimDisk(), 0
        sn.sm = sn.disk.applied_state
        sn.core = self.factory(name, 0, self.cfg, random.Random(self.rng.getrandbits(64)),
                               PersistedState())
        self._drive(name, sn.core.reconfigure(self.target, self.net.now))

    def _send_all(self, name: str, sends: list[tuple[str, Any]]) -> None:
        for dst, msg in sends:
            if self.p.wire_codec:
                # Deliver what a real peer would decode (snapshot data arrives as a map).
                frame = wire.encode_repl(msg)
                msg = wire.decode_repl(frame)
                assert wire.encode_repl(msg) == frame
            self.net.send(name, dst, msg)

    def _write_done(self, name: str, inc: int, write: tuple) -> None:
        sn = self.nodes[name]
        if not sn.up or sn.inc != inc:
            return  # crashed before the fsync returned: the write is lost
        hard, install, persist, compact, sends = write
        sn.disk.write(hard, install, persist, compact)
        if install is not None:
            sn.dmatch = install.meta.index if install.data.chain == self._chain_at(
                install.meta.index) else 0
        if persist and persist[0].index <= sn.dmatch:
            sn.dmatch = persist[0].index - 1
        self._send_all(name, sends)
        if persist:
            last = persist[-1]
            self._drive(name, sn.core.on_persisted(last.epoch, last.index, self.net.now))

    def _durable_apply(self, name: str, state: SmState) -> None:
        sn = self.nodes[name]
        done_at = max(self.net.now, sn.disk_busy) + self.p.fsync_s / 3
        sn.disk_busy = done_at
        inc = sn.inc

        def done() -> None:
            if sn.up and sn.inc == inc:
                sn.disk.applied_state = state
                self._drive(name, sn.core.on_applied(state.index, self.net.now))
        self.net.call_at(done_at, done, "apply-fsync")

    # --- invariants ------------------------------------------------------------------------

    def _violate(self, what: str) -> None:
        self.violations.append(f"t={self.net.now:.4f} step={self.now_step}: {what}")

    def _chain_at(self, index: int) -> str | None:
        return self.chain[index] if index < len(self.chain) else None

    def _apply(self, name: str, e: wire.ReplEntry) -> None:
        """Invariant 2: every member applies the same prefix, and it never changes."""
        sn = self.nodes[name]
        if e.index != sn.sm.index + 1:
            self._violate(f"{name} applied index {e.index} after {sn.sm.index}")
        value = e.payload if e.kind == wire.EntryKind.NORMAL else None
        sn.sm = sn.sm.then(e, value)
        if e.index < len(self.chain):
            if self.chain[e.index] != sn.sm.chain:
                self._violate(f"{name} applied a different entry at index {e.index}: {e}"
                              f" (committed: {self.ledger[e.index]})")
        elif e.index == len(self.chain):
            self.chain.append(sn.sm.chain)
            self.ledger.append(e)
            if value is not None:
                self.client_log.append(value)
            if e.kind == wire.EntryKind.CONFIG and e.config is not None:
                self.committed_config = e.config
        else:
            self._violate(f"{name} applied index {e.index} beyond the committed log")
        op = self.pending.pop((name, e.epoch, e.index), None)
        if op is not None and op.status == "pending":
            if e.payload == op.value and e.kind == wire.EntryKind.NORMAL:
                op.status, op.end = "ok", self.net.now
                self.c.commits += 1
                self.c.latencies.append(self.net.now - op.start)
                self.acked_max = max(self.acked_max, e.index)
            else:
                op.status = "unknown"

    def _check_snapshot(self, name: str, index: int, data: SmState) -> None:
        if self._chain_at(index) != data.chain:
            self._violate(f"{name} installed a snapshot at {index} that differs from the log")

    def _on_role(self, name: str, ev: Any) -> None:
        """Invariant 1: one leader per epoch, and it is the epoch's own node."""
        if ev.role is Role.LEADER and ev.leader == name and not ev.serving:
            self.c.leader_changes += 1
            if ev.epoch.node != name:
                self._violate(f"{name} leads epoch {ev.epoch} of another node")
            if ev.epoch in self.leaders:
                self._violate(f"{name} leads epoch {ev.epoch} a second time")
            self.leaders[ev.epoch] = name
        if ev.role is not Role.LEADER:
            self._fail_pending(name)

    def _check_durability(self) -> None:
        """Invariant 3: every acknowledged write is durable on more than a minority of
        the committed config's voters, so it survives the crash of any minority."""
        if not self.acked_max:
            return
        voters = self.committed_config.voters
        holders = sum(1 for v in voters if self._dmatch(v) >= self.acked_max)
        if holders < (len(voters) - 1) // 2 + 1:
            self._violate(f"acknowledged index {self.acked_max} is durable on only {holders}"
                          f" of voters {voters}")

    def _dmatch(self, name: str) -> int:
        """Longest prefix of the committed log held durably by ``name`` (cached)."""
        sn = self.nodes[name]
        disk = sn.disk
        a = disk.applied_state  # covers every index up to a.index
        if sn.dmatch < a.index and self._chain_at(a.index) == a.chain:
            sn.dmatch = a.index
        while sn.dmatch + 1 < len(self.ledger) and \
                disk.entries.get(sn.dmatch + 1) == self.ledger[sn.dmatch + 1]:
            sn.dmatch += 1
        return sn.dmatch

    # --- clients ---------------------------------------------------------------------------

    def _fail_pending(self, name: str) -> None:
        for key in [k for k in self.pending if k[0] == name]:
            op = self.pending.pop(key)
            if op.status == "pending":
                op.status = "unknown"

    def _client(self, cid: int) -> None:
        if self.healed:
            return
        up = [n for n, sn in self.nodes.items() if sn.up]
        target = self.designated if self.nodes[self.designated].up and \
            self.rng.random() < 0.8 else self.rng.choice(up)
        core = self.nodes[target].core
        now = self.net.now
        op = Op(id=len(self.ops), kind="r" if self.rng.random() < self.p.read_ratio else "w",
                start=now)
        self.ops.append(op)
        try:
            if op.kind == "w":
                op.value = self.next_value
                self.next_value += 1
                index, out = core.propose(op.value, now)
                self.pending[(target, core.epoch, index)] = op
            else:
                out = core.read(op, now)
            op.status = "pending"
            self._drive(target, out)
        except wire.ShoalError as err:
            assert err.code == wire.Code.NOT_LEADER
            op.status, op.end = "fail", now
        self.net.call_at(now + self.p.client_timeout_s, lambda: self._timeout(op), "timeout")
        self._next_client(cid, op)

    def _next_client(self, cid: int, op: Op) -> None:
        delay = 0.05 if op.status == "fail" else 0.01 + 0.04 * self.rng.random()
        self.net.call_at(self.net.now + delay, lambda: self._client(cid), "client")

    def _timeout(self, op: Op) -> None:
        if op.status == "pending":
            op.status = "unknown"
            self.c.unknown += 1

    def _read_done(self, op: Op, sm: SmState) -> None:
        if op.status == "pending":
            op.status, op.end = "ok", self.net.now
            op.length, op.digest = sm.count, sm.client_digest
            self.c.reads += 1

    # --- faults ------------------------------------------------------------------------------

    def _every(self, mean_s: float, fn: Callable[[], None], label: str) -> None:
        def fire() -> None:
            if not self.healed:
                fn()
                self._every(mean_s, fn, label)
        self.net.call_at(self.net.now + self.rng.expovariate(1 / mean_s), fire, label)

    def _fault_crash(self) -> None:
        up = [n for n, sn in self.nodes.items() if sn.up]
        down_voters = sum(1 for n in self.target if not self.nodes[n].up)
        victim = self.rng.choice(up)
        if victim in self.target and down_voters >= (len(self.target) - 1) // 2:
            return  # keep a majority up so there is progress to check
        self._crash(victim)
        self.net.call_at(self.net.now + self.rng.expovariate(1 / self.p.down_s),
                         lambda: self._restart(victim), "restart")

    def _fault_partition(self) -> None:
        names = list(self.nodes)
        side = [n for n in names if self.rng.random() < 0.5]
        self.c.partitions += 1
        self.net.partition(side)
        self.net.call_at(self.net.now + self.rng.expovariate(1 / self.p.partition_s),
                         self.net.heal, "heal")

    def _fault_pause(self) -> None:
        self.c.pauses += 1
        self.net.pause(self.rng.choice(list(self.nodes)), self.net.now + 0.3 * self.rng.random())

    def _reconfig(self) -> None:
        if tuple(sorted(self.committed_config.voters)) != tuple(sorted(self.target)) or \
                self.committed_config.learners:
            return  # the previous change is still in progress
        out_node = self.rng.choice(self.target)
        spares = [n for n in self.nodes if n not in self.target]
        in_node = self.rng.choice(spares)
        self.target = tuple(n if n != out_node else in_node for n in self.target)
        self.c.reconfigs += 1
        for n, sn in self.nodes.items():
            if sn.up:
                self._drive(n, sn.core.reconfigure(self.target, self.net.now))
        if self.designated == out_node:
            self._redesignate()

    def _redesignate(self) -> None:
        up = [n for n in self.target if self.nodes[n].up]
        if up:
            self.designated = self.rng.choice(up)

    # --- running ------------------------------------------------------------------------------

    def _tick(self, name: str) -> None:
        sn = self.nodes[name]
        now = self.net.now
        core = sn.core
        if name == self.designated and core.role is Role.FOLLOWER and core.is_voter and \
                now >= sn.next_campaign:
            sn.next_campaign = now + 0.2 + 0.3 * self.rng.random()
            self._drive(name, core.campaign(now))
        self._drive(name, core.tick(now))
        self.net.set_timer(name, "tick", now + 0.025)

    def _handle(self, ev: Any) -> None:
        if isinstance(ev, Delivered):
            sn = self.nodes[ev.dst]
            if sn.up:
                self._drive(ev.dst, sn.core.on_message(ev.src, ev.msg, self.net.now))
        elif isinstance(ev, TimerFired):
            self._tick(ev.node)

    def _heal(self) -> None:
        """End of the chaos: restart everyone, heal the network, and require progress."""
        self.healed = True
        self.net.heal()
        self.net.faults = LinkFaults(delay_s=self.p.delay_s, jitter_s=self.p.jitter_s)
        for n in self.nodes:
            self._restart(n)
        self._redesignate()
        self.heal_at = self.net.now
        self.probe_op: Op | None = None

    def _converged(self) -> bool:
        """Liveness: a fresh write commits, and every voter has applied the whole log."""
        leader = next((sn for sn in self.nodes.values() if sn.core.serving), None)
        if leader is None:
            return False
        if self.probe_op is None or self.probe_op.status not in ("ok", "pending"):
            self.probe_op = Op(id=len(self.ops), kind="w", start=self.net.now,
                               value=self.next_value)
            self.next_value += 1
            try:
                index, out = leader.core.propose(self.probe_op.value, self.net.now)
            except wire.ShoalError:
                return False
            self.ops.append(self.probe_op)
            self.probe_op.status = "pending"
            self.pending[(leader.name, leader.core.epoch, index)] = self.probe_op
            self._drive(leader.name, out)
            return False
        if self.probe_op.status != "ok":
            return False
        cfg = leader.core.config
        if sorted(cfg.voters) != sorted(self.target) or cfg.learners:
            return False
        top = leader.core.commit
        return all(self.nodes[v].sm.index == top for v in cfg.voters)

    def run(self) -> dict[str, Any]:
        for cid in range(self.p.clients):
            self.net.call_at(0.1 + 0.01 * cid, lambda cid=cid: self._client(cid), "client")
        self._every(self.p.crash_every_s, self._fault_crash, "crash")
        self._every(self.p.partition_every_s, self._fault_partition, "partition")
        self._every(self.p.pause_every_s, self._fault_pause, "pause")
        self._every(self.p.reconfig_every_s, self._reconfig, "reconfig")
        self._every(self.p.handoff_every_s, self._redesignate, "handoff")
        while self.now_step < self.p.steps and not self.violations:
            self._step()
        self._heal()
        deadline = self.net.now + self.p.liveness_s
        while not self.violations and self.net.now < deadline:
            self._step()
            if self.now_step % 50 == 0 and self._converged():
                self.converged_at = self.net.now - self.heal_at
                break
        if self.converged_at is None and not self.violations:
            self._violate(f"liveness: no convergence within {self.p.liveness_s}s of healing")
        for op in self.ops:
            if op.status == "pending":
                op.status = "unknown"
        for v in check_log_history(self.ops, self.client_log):
            self._violate(f"linearizability: {v}")
        return self.result()

    def _step(self) -> None:
        ev = self.net.step()
        assert ev is not None, "the simulation ran out of events"
        self.now_step += 1
        if not isinstance(ev, Action):
            self._handle(ev)
        self._check_durability()

    def result(self) -> dict[str, Any]:
        lat = sorted(self.c.latencies)
        rtt = 2 * (self.p.delay_s + self.p.jitter_s / 2)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] / rtt, 2) if lat else 0.0

        c = asdict(self.c)
        c.pop("latencies")
        return {
            "params": asdict(self.p),
            "violations": self.violations,
            **c,
            "committed_entries": len(self.ledger) - 1,
            "commit_latency_rounds_p50": pct(0.5),
            "commit_latency_rounds_p99": pct(0.99),
            "sim_time_s": round(self.net.now, 3),
            "converged_after_heal_s": None if self.converged_at is None
            else round(self.converged_at, 3),
            "final_voters": list(self.target),
        }


def run_replication_sim(replicas: int = 3, seed: int = 0, steps: int = 20_000,
                        factory: ReplicaFactory = Replica, **overrides: Any) -> dict[str, Any]:
    """Run one seeded simulation; the result's ``violations`` must be empty."""
    params = SimParams(replicas=replicas, seed=seed, steps=steps, **overrides)
    return ReplicationSim(params, factory).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shoal sim replication")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, default=1, help="run seeds seed..seed+N-1")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    failed = 0
    for seed in range(args.seed, args.seed + args.seeds):
        res = run_replication_sim(args.replicas, seed, args.steps)
        if args.json:
            print(json.dumps(res, sort_keys=True))
        else:
            _print_human(res)
        if res["violations"]:
            failed += 1
            print(f"reproduce: python -m shoal.sim.replication_sim --replicas {args.replicas} "
                  f"--seed {seed} --steps {args.steps}", file=sys.stderr)
    return 1 if failed else 0


def _print_human(res: dict[str, Any]) -> None:
    p = res["params"]
    print(f"seed={p['seed']} replicas={p['replicas']} steps={p['steps']} loss={p['loss']} "
          f"dup={p['duplicate']} delay={p['delay_s']}+{p['jitter_s']}s")
    print(f"  violations={len(res['violations'])} commits={res['commits']} "
          f"reads={res['reads']} leader_changes={res['leader_changes']} "
          f"latency_rounds p50={res['commit_latency_rounds_p50']} "
          f"p99={res['commit_latency_rounds_p99']}")
    print(f"  crashes={res['crashes']} partitions={res['partitions']} pauses={res['pauses']} "
          f"reconfigs={res['reconfigs']} snapshots={res['snapshots']} dropped={res['dropped']} "
          f"converged_after_heal_s={res['converged_after_heal_s']} "
          f"sim_time_s={res['sim_time_s']}")
    for v in res["violations"][:20]:
        print("  VIOLATION", v)


if __name__ == "__main__":
    sys.exit(main())
