"""A few gossip cores wired over the fake network, for scripted multi-node tests."""

from __future__ import annotations

import random

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import MemberEvent, Output
from shoal.gossip.swim import Swim
from shoal.sim.network import Delivered, Event, LinkFaults, Network, TimerFired

META = wire.MemberMeta(api_addr="ws://x:7350", cluster_name="test", num_shards=8)


def meta(name: str, **changes: object) -> wire.MemberMeta:
    fields = dict(api_addr=f"ws://{name}:7350", cluster_name="test", num_shards=8)
    fields.update(changes)
    return wire.MemberMeta(**fields)  # type: ignore[arg-type]


def core(name: str, cfg: SwimConfig | None = None, seed: int = 1, **meta_changes: object) -> Swim:
    return Swim(name, cfg or SwimConfig.small(), random.Random(seed), meta(name, **meta_changes))


class Cluster:
    """Cores named by address, a seeded network, and every event each core reported."""

    def __init__(self, seed: int = 1, cfg: SwimConfig | None = None,
                 faults: LinkFaults | None = None, frames: bool = True) -> None:
        self.cfg = cfg or SwimConfig.small()
        self.rng = random.Random(seed)
        self.net = Network(random.Random(self.rng.getrandbits(64)), faults)
        self.cores: dict[str, Swim] = {}
        self.events: dict[str, list[tuple[float, MemberEvent]]] = {}
        self.frames = frames

    def add(self, name: str, seeds: list[str], **meta_changes: object) -> Swim:
        c = Swim(name, self.cfg, random.Random(self.rng.getrandbits(64)), meta(name, **meta_changes))
        self.cores[name] = c
        self.events[name] = []
        self.apply(name, c.join(seeds, self.net.now))
        return c

    def apply(self, name: str, out: Output) -> None:
        key = self.cfg.cluster_key
        for addr, pkt in out.send:
            self.net.send(name, addr, wire.encode_gossip(pkt, key) if self.frames else pkt)
        for addr, msg in out.stream:
            self.net.send(name, addr, wire.encode_gossip(msg, key) if self.frames else msg,
                          reliable=True)
        for k, at in out.timers:
            self.net.set_timer(name, k, at)
        self.events[name].extend((self.net.now, e) for e in out.events)

    def handle(self, ev: Event) -> None:
        if isinstance(ev, Delivered) and ev.dst in self.cores:
            self.apply(ev.dst, self.cores[ev.dst].on_message(ev.src, ev.msg, self.net.now,
                                                             stream=ev.reliable))
        elif isinstance(ev, TimerFired):
            self.apply(ev.node, self.cores[ev.node].on_timer(ev.key, self.net.now))

    def run(self, seconds: float) -> None:
        self.net.run_until(self.net.now + seconds, self.handle)

    def view(self, name: str) -> dict[str, wire.MemberState]:
        return {m.name: m.state for m in self.cores[name].members()}

    def kinds(self, name: str, about: str) -> list[str]:
        return [type(e).__name__ for _, e in self.events[name] if e.member.name == about]
