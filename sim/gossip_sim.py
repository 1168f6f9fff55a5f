"""Gossip simulation: N SWIM cores in one process over the fake network (DESIGN §9).

Owns: the scripted scenario behind ``shoal sim gossip`` and its figures. N nodes join a
cluster through one seed; once every node sees every other alive, one node is crashed,
another (optionally) paused — Lifeguard's slow node — and a new node joins. The run
reports how long the first and the last member took to mark the crashed node dead
(against the bound memberlist's suspicion timeouts give), how long 99.9 % of members took
to learn the join, false positives (healthy nodes ever declared dead) and messages and
bytes per node per second. Every random choice comes from the seed; the same seed gives
byte-identical JSON. Must not: read the wall clock, iterate sets, or ``hash()`` strings.

    python -m shoal.sim.gossip_sim --nodes 100 --seed 1 --loss 0.05 --pause 5 --json
    python -m shoal.sim.gossip_sim --sweep 20 --nodes 50 --loss 0.05 --pause 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
from dataclasses import asdict, dataclass
from typing import Any

from shoal import wire
from shoal.gossip.broadcast import retransmit_limit
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import (
    MemberDied, MemberEvent, MemberJoined, MemberLeft, MemberSuspected, Output,
)
from shoal.gossip.suspicion import suspicion_timeout
from shoal.gossip.swim import Swim
from shoal.sim.network import Delivered, Event, LinkFaults, Network, TimerFired

CONVERGE_CHECK_S = 0.5  # how often the warm-up checks that everyone sees everyone
WARMUP_MAX_S = 120.0  # give up waiting for convergence after this long
CLUSTER = wire.MemberMeta(api_addr="", cluster_name="sim", num_shards=64)


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipSimParams:
    """One scenario. Times are simulated seconds."""

    nodes: int
    seed: int
    loss: float = 0.0
    pause: float = 0.0  # how long one healthy node is paused (0: no pause)
    preset: str = "lan"  # SwimConfig preset: "lan" or "small"
    delay_s: float = 0.0005
    jitter_s: float = 0.001
    duplicate: float = 0.0
    key: bool = False  # authenticate frames with an HMAC cluster key
    frames: bool = False  # encode/decode real frames (False: pass objects, count sizes)
    fallback: bool = True  # SwimConfig.stream_fallback

    def command(self) -> str:
        """The command line that reproduces this run."""
        args = [f"--nodes {self.nodes}", f"--seed {self.seed}", f"--loss {self.loss}"]
        if self.pause:
            args.append(f"--pause {self.pause}")
        if self.preset != "lan":
            args.append(f"--preset {self.preset}")
        if self.duplicate:
            args.append(f"--duplicate {self.duplicate}")
        if self.jitter_s != 0.001:
            args.append(f"--jitter {self.jitter_s}")
        if self.key:
            args.append("--key")
        if self.frames:
            args.append("--frames")
        if not self.fallback:
            args.append("--no-fallback")
        return "python -m shoal.sim.gossip_sim " + " ".join(args) + " --json"


def _name(i: int) -> str:
    return f"n{i:04d}"


class GossipSim:
    """The scenario's state: the network, the cores, and what each member has observed."""

    def __init__(self, p: GossipSimParams) -> None:
        assert p.nodes >= 3, "the scenario needs a seed, a victim and a paused node"
        self.p = p
        self.rng = random.Random(p.seed)
        self.cfg = SwimConfig.small() if p.preset == "small" else SwimConfig.lan()
        if p.key or not p.fallback:
            key = b"sim-cluster-key-" + str(p.seed).encode() if p.key else None
            self.cfg = _replace(self.cfg, cluster_key=key, stream_fallback=p.fallback)
        faults = LinkFaults(loss=p.loss, delay_s=p.delay_s, jitter_s=p.jitter_s,
                            duplicate=p.duplicate)
        self.net = Network(random.Random(self.rng.getrandbits(64)), faults)
        self.cores: dict[str, Swim] = {}
        self._sizes: dict[wire.GossipMessage, int] = {}
        # observer -> member -> True while alive/suspect in the observer's view
        self.view: dict[str, dict[str, bool]] = {}
        self.live_count: dict[str, int] = {}
        self.dead_at: dict[str, dict[str, float]] = {}  # member -> observer -> first death
        self.joined_at: dict[str, dict[str, float]] = {}  # member -> observer -> first join
        self.suspected: dict[str, int] = {}  # member -> suspicions started about it
        self.converged_at: float | None = None
        self.t_fault: float | None = None
        self.crashed: str | None = None
        self.paused: str | None = None
        self.joiner: str | None = None

    # --- plumbing -----------------------------------------------------------------------

    def _start_node(self, name: str, seeds: list[str]) -> None:
        meta = wire.MemberMeta(api_addr=f"ws://{name}:7350", cluster_name=CLUSTER.cluster_name,
                               num_shards=CLUSTER.num_shards)
        core = Swim(name, self.cfg, random.Random(self.rng.getrandbits(64)), meta)
        self.cores[name] = core
        self.view[name] = {}
        self.live_count[name] = 0
        self._apply(name, core.join(seeds, self.net.now))

    def _apply(self, node: str, out: Output) -> None:
        key = self.cfg.cluster_key
        for addr, pkt in out.send:
            self._send(node, addr, pkt, key, reliable=False)
        for addr, msg in out.stream:
            self._send(node, addr, msg, key, reliable=True)
        for tkey, at in out.timers:
            self.net.set_timer(node, tkey, at)
        for ev in out.events:
            self._record(node, ev)

    def _send(self, node: str, addr: str, msg: Any, key: bytes | None, reliable: bool) -> None:
        if self.p.frames:
            data = wire.encode_gossip(msg, key)
            self.net.send(node, addr, data, size=len(data), reliable=reliable)
        else:
            self.net.send(node, addr, msg, size=self._size(msg, key), reliable=reliable)

    def _size(self, msg: Any, key: bytes | None) -> int:
        """Encoded frame size without encoding every packet: a rumour is one object sent
        many times (re-broadcasts pass it on unchanged), so its size is memoised."""
        if not isinstance(msg, wire.GossipPacket):
            return len(wire.encode_gossip(msg, key))
        n = len(msg.messages)
        # header byte, MAC, CBOR array header (1 byte below 24 items, 2 below 256)
        total = 1 + (wire.GOSSIP_MAC_BYTES if key else 0) + (1 if n < 24 else 2 if n < 256 else 3)
        for m in msg.messages:
            if isinstance(m, (wire.Alive, wire.Suspect, wire.Dead)):
                size = self._sizes.get(m)
                if size is None:
                    size = self._sizes[m] = wire.gossip_message_size(m)
            else:
                size = wire.gossip_message_size(m)
            total += size
        return total

    def _handle(self, ev: Event) -> None:
        if isinstance(ev, Delivered):
            core = self.cores.get(ev.dst)
            if core is not None:
                self._apply(ev.dst, core.on_message(ev.src, ev.msg, self.net.now,
                                                    stream=ev.reliable))
        elif isinstance(ev, TimerFired):
            self._apply(ev.node, self.cores[ev.node].on_timer(ev.key, self.net.now))

    def _record(self, obs: str, ev: MemberEvent) -> None:
        name, now = ev.member.name, self.net.now
        alive = not isinstance(ev, (MemberDied, MemberLeft))
        was = self.view[obs].get(name, False)
        self.view[obs][name] = alive
        self.live_count[obs] += int(alive) - int(was)
        if isinstance(ev, MemberDied):
            self.dead_at.setdefault(name, {}).setdefault(obs, now)
        elif isinstance(ev, MemberJoined):
            self.joined_at.setdefault(name, {}).setdefault(obs, now)
        elif isinstance(ev, MemberSuspected):
            self.suspected[name] = self.suspected.get(name, 0) + 1

    # --- scenario -----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        p, net = self.p, self.net
        names = [_name(i) for i in range(p.nodes)]
        spread = 0.02 * p.nodes  # nodes start over this window, each joining via the seed
        net.call_at(0.0, lambda: self._start_node(names[0], []), "start seed")
        for n in names[1:]:
            net.call_at(self.rng.uniform(0.0, spread), lambda n=n: self._start_node(n, [names[0]]))
        t = CONVERGE_CHECK_S
        while t < WARMUP_MAX_S and self.converged_at is None:
            net.run_until(t, self._handle)
            if len(self.cores) == p.nodes and all(
                    c == p.nodes - 1 for c in self.live_count.values()):
                self.converged_at = t
            t += CONVERGE_CHECK_S
        self.t_fault = t0 = net.now
        stats0 = self._traffic()
        self._inject_faults(names, t0)
        end = t0 + self.detection_bound() + 5.0
        net.run_until(end, self._handle)
        return self._report(t0, end, stats0)

    def _inject_faults(self, names: list[str], t0: float) -> None:
        # Victims never include the seed, so the joiner can always reach it.
        victims = self.rng.sample(names[1:], 2)
        self.crashed, self.paused = victims
        self.net.crash(self.crashed)
        if self.p.pause > 0:
            pause_at = t0 + 1.0
            self.net.call_at(pause_at, lambda: self.net.pause(self.paused, pause_at + self.p.pause))
        else:
            self.paused = None
        self.joiner = _name(self.p.nodes)
        self.net.call_at(t0 + 2.0, lambda: self._start_node(self.joiner, [names[0]]), "join")

    def detection_bound(self) -> float:
        """The time by which memberlist's rules say every member marks a crashed node dead:
        the victim's first failed probe (within two probe intervals: N probers, plus the
        probe's own deadline), the longest suspicion timeout (no confirmations at all), and
        the dissemination of the death (one retransmit budget of gossip rounds)."""
        n, cfg = self.p.nodes, self.cfg
        lo = suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval_s)
        return (2 * cfg.probe_interval_s + cfg.suspicion_max_timeout_mult * lo
                + cfg.gossip_interval_s * retransmit_limit(cfg.retransmit_mult, n))

    def _traffic(self) -> tuple[int, int]:
        msgs = sum(s.sent_msgs for s in self.net.stats.values())
        sent = sum(s.sent_bytes for s in self.net.stats.values())
        return msgs, sent

    def _report(self, t0: float, end: float, stats0: tuple[int, int]) -> dict[str, Any]:
        p, cfg = self.p, self.cfg
        assert self.crashed is not None and self.joiner is not None
        observers = [n for n in self.cores if n not in (self.crashed, self.joiner)]
        deaths = self.dead_at.get(self.crashed, {})
        times = sorted(deaths[o] - t0 for o in observers if o in deaths)
        # A paused member cannot learn anything until it resumes: it is left out of the
        # join's audience (it is still an observer of the crash).
        audience = [o for o in observers if o != self.paused]
        joined = self.joined_at.get(self.joiner, {})
        joins = sorted(joined[o] - (t0 + 2.0) for o in audience if o in joined)
        need = math.ceil(0.999 * len(audience))
        healthy = [n for n in self.cores if n not in (self.crashed, self.paused)]
        false_pos = [n for n in healthy if self.dead_at.get(n)]
        msgs0, bytes0 = stats0
        msgs1, bytes1 = self._traffic()
        per = len(self.cores) * (end - t0)
        lo = suspicion_timeout(cfg.suspicion_mult, p.nodes, cfg.probe_interval_s)
        bound = self.detection_bound()
        return {
            "params": asdict(p),
            "command": p.command(),
            "converged_s": _r(self.converged_at),
            "crashed": self.crashed,
            "paused": self.paused,
            "first_dead_s": _r(times[0]) if times else None,
            "all_dead_s": _r(times[-1]) if len(times) == len(observers) else None,
            "marked_dead": len(times),
            "observers": len(observers),
            "suspicion_min_s": _r(lo),
            "suspicion_max_s": _r(lo * cfg.suspicion_max_timeout_mult),
            "detection_bound_s": _r(bound),
            "within_bound": len(times) == len(observers) and times[-1] <= bound,
            "join_999_s": _r(joins[need - 1]) if len(joins) >= need else None,
            "false_positives": len(false_pos),
            "false_positive_nodes": false_pos,
            "healthy_suspected": sum(1 for n in healthy if self.suspected.get(n)),
            "paused_declared_dead_by": len(self.dead_at.get(self.paused or "", {})),
            "msgs_per_node_s": _r((msgs1 - msgs0) / per),
            "bytes_per_node_s": _r((bytes1 - bytes0) / per),
            "simulated_s": _r(end),
            "refutations": sum(c.stats.refutations for c in self.cores.values()),
            "dropped_malformed": sum(c.stats.dropped_malformed + c.stats.dropped_auth
                                     for c in self.cores.values()),
        }


def _replace(cfg: SwimConfig, **changes: Any) -> SwimConfig:
    return dataclasses.replace(cfg, **changes)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def run_gossip_sim(nodes: int, seed: int, loss: float = 0.0, pause: float = 0.0,
                   **options: Any) -> dict[str, Any]:
    """Run the gossip scenario once and return its figures (see the module docstring).

    Args:
        nodes: cluster size before the join (>= 3).
        seed: the only source of randomness.
        loss: datagram loss probability.
        pause: seconds one healthy node is paused (0: none).
        options: the other :class:`GossipSimParams` fields (preset, jitter_s, duplicate,
            key, frames, delay_s).

    Returns:
        A JSON-ready dict; the same arguments always give the same dict.
    """
    return GossipSim(GossipSimParams(nodes=nodes, seed=seed, loss=loss, pause=pause,
                                     **options)).run()


def violations(report: dict[str, Any]) -> list[str]:
    """The properties a run must have (used by tests and the sweep)."""
    bad = []
    if report["converged_s"] is None:
        bad.append("cluster never converged")
    if not report["within_bound"]:
        bad.append(f"not every member marked the crashed node dead within "
                   f"{report['detection_bound_s']} s (all_dead_s={report['all_dead_s']})")
    if report["false_positives"]:
        bad.append(f"healthy nodes declared dead: {report['false_positive_nodes']}")
    if report["join_999_s"] is None:
        bad.append("the join did not reach 99.9 % of members")
    return bad


def dumps(report: dict[str, Any]) -> str:
    """The canonical JSON text of a report (sorted keys: byte-identical per seed)."""
    return json.dumps(report, sort_keys=True)


def _sweep(args: argparse.Namespace, options: dict[str, Any]) -> int:
    failed = []
    rows = []
    for seed in range(args.seed, args.seed + args.sweep):
        rep = run_gossip_sim(args.nodes, seed, args.loss, args.pause, **options)
        bad = violations(rep)
        rows.append({k: rep[k] for k in ("first_dead_s", "all_dead_s", "join_999_s",
                                           "false_positives", "msgs_per_node_s")})
        if bad:
            failed.append({"seed": seed, "violations": bad, "command": rep["command"]})
    print(json.dumps({"runs": len(rows), "failed": failed, "worst_all_dead_s": max(
        (r["all_dead_s"] or math.inf) for r in rows), "worst_join_999_s": max(
        (r["join_999_s"] or math.inf) for r in rows)}, sort_keys=True))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shoal sim gossip", description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--pause", type=float, default=0.0, help="pause one node for S seconds")
    ap.add_argument("--preset", choices=["lan", "small"], default="lan")
    ap.add_argument("--jitter", type=float, default=0.001, help="max extra delay (s)")
    ap.add_argument("--duplicate", type=float, default=0.0)
    ap.add_argument("--key", action="store_true", help="authenticate frames (HMAC)")
    ap.add_argument("--no-fallback", action="store_true",
                    help="disable the fallback ping over the reliable link")
    ap.add_argument("--frames", action="store_true",
                    help="encode and decode every frame (slower; default passes objects)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--sweep", type=int, default=0, help="run this many seeds from --seed")
    args = ap.parse_args(argv)
    options = dict(preset=args.preset, jitter_s=args.jitter, duplicate=args.duplicate,
                   key=args.key, frames=args.frames, fallback=not args.no_fallback)
    if args.sweep:
        return _sweep(args, options)
    rep = run_gossip_sim(args.nodes, args.seed, args.loss, args.pause, **options)
    if args.json:
        print(dumps(rep))
    else:
        for k in sorted(rep):
            print(f"{k}: {rep[k]}")
    bad = violations(rep)
    for b in bad:
        print(f"VIOLATION: {b}\nreproduce: {rep['command']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
