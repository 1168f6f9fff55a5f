"""gossip/swim.py + state.py: the SWIM core driven by plain calls and a tiny cluster."""

from __future__ import annotations

import dataclasses

from helpers.gossip_cluster import Cluster, core, meta

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import (
    MemberDied, MemberJoined, MemberLeft, MemberRecovered, MemberSuspected, MemberUpdated,
)
from shoal.gossip.swim import Swim, push_pull_interval
from shoal.sim.network import LinkFaults
from shoal.wire import MemberState

CFG = SwimConfig.small()


def pkt(*msgs: wire.GossipMessage) -> wire.GossipPacket:
    return wire.GossipPacket(messages=list(msgs))


def alive(name: str, inc: int = 1, **meta_changes: object) -> wire.Alive:
    return wire.Alive(node=name, incarnation=inc, addr=name, meta=meta(name, **meta_changes))


def with_members(*names: str, cfg: SwimConfig = CFG) -> Swim:
    a = core("a", cfg)
    a.join([], 0.0)
    a.on_message("x", pkt(*(alive(n) for n in names)), 0.0)
    return a


def sent(out, kind: type) -> list[tuple[str, object]]:
    return [(addr, m) for addr, p in out.send for m in p.messages if isinstance(m, kind)]


# --- probing -------------------------------------------------------------------------


def test_ping_for_us_is_acked_to_the_sender_and_others_are_counted() -> None:
    a = with_members("b")
    out = a.on_message("b", pkt(wire.Ping(seq=5, target="a")), 1.0)
    assert sent(out, wire.Ack) == [("b", wire.Ack(seq=5))]
    out = a.on_message("b", pkt(wire.Ping(seq=6, target="zz")), 1.0)
    assert sent(out, wire.Ack) == [] and a.stats.dropped_misdirected == 1


def _probe(a: Swim, now: float = 1.0) -> tuple[str, int]:
    out = a.on_timer(("probe",), now)
    [(target, ping)] = sent(out, wire.Ping)
    keys = [k for k, _ in out.timers]
    assert ("probe_timeout", ping.seq) in keys and ("probe_deadline", ping.seq) in keys
    return target, ping.seq


def test_acked_probe_raises_no_suspicion_and_improves_health() -> None:
    a = with_members("b", "c")
    a.awareness.apply_delta(2)
    target, seq = _probe(a)
    a.on_message(target, pkt(wire.Ack(seq=seq)), 1.01)
    assert a.health_score == 1
    assert a.on_timer(("probe_timeout", seq), 1.2).send == []
    assert a.on_timer(("probe_deadline", seq), 2.0).events == []


def test_missed_ack_asks_helpers_then_suspects_the_target() -> None:
    cfg = dataclasses.replace(CFG, indirect_checks=2)
    a = with_members("b", "c", "d", cfg=cfg)
    target, seq = _probe(a)
    out = a.on_timer(("probe_timeout", seq), 1.2)
    reqs = sent(out, wire.IndirectPing)
    assert len(reqs) == 2 and target not in {h for h, _ in reqs}
    assert all(r.target == target and r.seq == seq and r.nack for _, r in reqs)
    assert [m for _, p in out.stream for m in p.messages] == [wire.Ping(seq=seq, target=target)]
    a.on_message(reqs[0][0], pkt(wire.Nack(seq=seq)), 1.5)  # one helper is reachable
    out = a.on_timer(("probe_deadline", seq), 2.0)
    assert [type(e) for e in out.events] == [MemberSuspected]
    assert out.events[0].member.name == target
    assert ("suspicion", target) in [k for k, _ in out.timers]
    assert a.health_score == 1  # one expected nack never came: maybe our network
    assert a.stats.probes_failed == 1


def test_indirect_ack_completes_the_probe() -> None:
    a = with_members("b", "c")
    target, seq = _probe(a)
    a.on_timer(("probe_timeout", seq), 1.2)
    a.on_message("c", pkt(wire.Ack(seq=seq)), 1.5)
    assert a.on_timer(("probe_deadline", seq), 2.0).events == []


def test_fallback_ack_over_the_stream_completes_the_probe() -> None:
    a, b = with_members("b"), core("b")
    target, seq = _probe(a)
    out = a.on_timer(("probe_timeout", seq), 1.2)
    [(addr, fallback)] = out.stream
    [(_, ack)] = b.on_message("a", fallback, 1.3, stream=True).stream
    a.on_message("b", ack, 1.4, stream=True)
    assert a.stats.fallback_acks == 1
    assert a.on_timer(("probe_deadline", seq), 2.0).events == []


def test_late_timers_after_a_stall_give_helpers_time_before_suspecting() -> None:
    a = with_members("b", "c")
    target, seq = _probe(a, 1.0)
    # Paused from 1.1 to 9.0: both timers fire at once when we resume.
    out = a.on_timer(("probe_timeout", seq), 9.0)
    assert (("probe_deadline", seq), 9.0 + CFG.probe_timeout_s) in out.timers
    assert a.on_timer(("probe_deadline", seq), 9.0).events == []
    a.on_message("c", pkt(wire.Ack(seq=seq)), 9.05)
    assert a.on_timer(("probe_deadline", seq), 9.2).events == []


def test_helper_relays_the_ack_with_the_requesters_seq_or_nacks() -> None:
    h = with_members("b")
    out = h.on_message("a", pkt(wire.IndirectPing(seq=42, target="b", target_addr="b")), 1.0)
    [(addr, ping)] = sent(out, wire.Ping)
    assert addr == "b" and ping.target == "b"
    out = h.on_message("b", pkt(wire.Ack(seq=ping.seq)), 1.1)
    assert sent(out, wire.Ack) == [("a", wire.Ack(seq=42))]
    out = h.on_message("a", pkt(wire.IndirectPing(seq=43, target="b", target_addr="b")), 2.0)
    [(_, ping2)] = sent(out, wire.Ping)
    out = h.on_timer(("relay", ping2.seq), 2.2)
    assert sent(out, wire.Nack) == [("a", wire.Nack(seq=43))]


def test_probing_a_suspect_tells_it_so_it_can_refute() -> None:
    a = with_members("b")
    a.on_message("c", pkt(wire.Suspect(node="b", incarnation=1, source="c")), 0.5)
    out = a.on_timer(("probe",), 1.0)
    assert ("b", wire.Suspect(node="b", incarnation=1, source="a")) in sent(out, wire.Suspect)


def test_unhealthy_node_stretches_its_probe_deadline() -> None:
    a = with_members("b")
    a.awareness.apply_delta(3)
    out = a.on_timer(("probe",), 1.0)
    [seq] = [k[1] for k, _ in out.timers if k[0] == "probe_deadline"]
    assert (("probe_deadline", seq), 1.0 + 4 * CFG.probe_interval_s) in out.timers
    # The next tick finds the probe still running and skips it.
    assert sent(a.on_timer(("probe",), 2.0), wire.Ping) == []


# --- membership rules -----------------------------------------------------------------


def test_suspicion_of_us_is_refuted_with_a_higher_incarnation() -> None:
    a = with_members("b")
    a.on_message("b", pkt(wire.Suspect(node="a", incarnation=4, source="b")), 1.0)
    assert a.incarnation == 5 and a.health_score == 1 and a.stats.refutations == 1
    assert a.state.broadcasts.pending("a") == alive("a", 5)


def test_death_of_us_is_refuted_unless_we_left() -> None:
    a = with_members("b")
    a.on_message("b", pkt(wire.Dead(node="a", incarnation=1, source="b")), 1.0)
    assert a.incarnation == 2
    a.leave(2.0)
    assert {m.name: m.state for m in a.members()}["a"] == MemberState.LEFT


def test_suspect_is_refuted_by_higher_incarnation_and_recovers() -> None:
    a = with_members("b")
    out = a.on_message("c", pkt(wire.Suspect(node="b", incarnation=1, source="c")), 1.0)
    assert [type(e) for e in out.events] == [MemberSuspected]
    out = a.on_message("b", pkt(alive("b", 1)), 1.5)
    assert out.events == []  # same incarnation does not clear a suspicion
    out = a.on_message("b", pkt(alive("b", 2)), 2.0)
    assert [type(e) for e in out.events] == [MemberRecovered]
    assert a.on_timer(("suspicion", "b"), 100.0).events == []


def test_suspicion_expires_into_death_and_stale_timers_are_ignored() -> None:
    a = with_members("b", "c", "d", "e")
    out = a.on_message("c", pkt(wire.Suspect(node="b", incarnation=1, source="c")), 1.0)
    [(_, deadline)] = [t for t in out.timers if t[0] == ("suspicion", "b")]
    out = a.on_message("d", pkt(wire.Suspect(node="b", incarnation=1, source="d")), 2.0)
    [(_, sooner)] = [t for t in out.timers if t[0] == ("suspicion", "b")]
    assert sooner < deadline
    assert a.state.broadcasts.pending("b") == wire.Suspect(node="b", incarnation=1, source="d")
    assert a.on_timer(("suspicion", "b"), sooner - 0.5).events == []
    out = a.on_timer(("suspicion", "b"), sooner)
    assert [type(e) for e in out.events] == [MemberDied]
    assert a.state.broadcasts.pending("b") == wire.Dead(node="b", incarnation=1, source="a")


def test_declaring_a_death_tells_the_other_accusers_directly() -> None:
    a = with_members("b", "c", "d", "e")
    a.on_message("c", pkt(wire.Suspect(node="b", incarnation=1, source="c")), 1.0)
    out = a.on_message("d", pkt(wire.Suspect(node="b", incarnation=1, source="d")), 1.1)
    [(_, deadline)] = [t for t in out.timers if t[0] == ("suspicion", "b")]
    out = a.on_timer(("suspicion", "b"), deadline)
    verdict = wire.Dead(node="b", incarnation=1, source="a")
    # c started the suspicion and d confirmed it: both wait on timers of their own. Each
    # is told in a packet of its own, whatever the broadcast queue's random picks do.
    assert (("c", pkt(verdict)) in out.send) and (("d", pkt(verdict)) in out.send)
    assert all(addr != "e" for addr, p in out.send if p == pkt(verdict))


def test_hearing_a_death_tells_our_accusers_except_its_source() -> None:
    a = with_members("b", "c", "d", "e")
    a.on_message("c", pkt(wire.Suspect(node="b", incarnation=1, source="c")), 1.0)
    a.on_message("e", pkt(wire.Suspect(node="b", incarnation=1, source="e")), 1.1)
    verdict = wire.Dead(node="b", incarnation=1, source="e")
    out = a.on_message("e", pkt(verdict), 1.2)
    assert [type(e) for e in out.events] == [MemberDied]
    assert [addr for addr, p in out.send if p == pkt(verdict)] == ["c"]


def test_accusers_told_of_a_death_are_capped_at_gossip_nodes() -> None:
    a = with_members("b", "c", "d", "e", "f", "g")
    for i, src in enumerate("cdefg"):
        a.on_message(src, pkt(wire.Suspect(node="b", incarnation=1, source=src)), 1.0 + i / 10)
    out = a.on_message("x", pkt(wire.Dead(node="b", incarnation=1, source="x")), 2.0)
    told = [addr for addr, p in out.send if p.messages[0] == wire.Dead(node="b", incarnation=1,
                                                                       source="x")]
    assert told[:CFG.gossip_nodes] == ["c", "d", "e"] and len(told) == CFG.gossip_nodes


def test_an_accusation_of_a_member_we_hold_dead_is_answered_with_the_verdict() -> None:
    a = with_members("b", "c")
    a.on_message("c", pkt(wire.Dead(node="b", incarnation=1, source="c")), 1.0)
    relay = "9.9.9.9:7350"  # whoever passed the accusation on: it is behind too
    out = a.on_message(relay, pkt(wire.Suspect(node="b", incarnation=1, source="c")), 2.0)
    assert out.send == [(relay, pkt(wire.Dead(node="b", incarnation=1, source="a")))]
    assert a.stats.verdicts_answered == 1
    # News (a higher incarnation: b refuted meanwhile) is not answered.
    out = a.on_message("c", pkt(wire.Suspect(node="b", incarnation=2, source="c")), 3.0)
    assert out.send == []
    # A member that left is answered with its own leave, so it stays "left".
    a.on_message("c", pkt(wire.Dead(node="c", incarnation=1, source="c")), 4.0)
    out = a.on_message("d", pkt(wire.Suspect(node="c", incarnation=1, source="d")), 5.0)
    assert out.send == [("d", pkt(wire.Dead(node="c", incarnation=1, source="c")))]


def test_an_accusation_of_a_live_member_is_not_answered() -> None:
    a = with_members("b", "c")
    out = a.on_message("c", pkt(wire.Suspect(node="b", incarnation=1, source="c")), 1.0)
    assert out.send == [] and a.stats.verdicts_answered == 0


def test_old_incarnations_and_old_alive_rumours_change_nothing() -> None:
    a = with_members("b")
    a.on_message("b", pkt(alive("b", 5)), 1.0)
    assert a.on_message("c", pkt(wire.Suspect(node="b", incarnation=4, source="c")), 1.0).events == []
    assert a.on_message("c", pkt(wire.Dead(node="b", incarnation=4, source="c")), 1.0).events == []
    a.on_message("c", pkt(wire.Dead(node="b", incarnation=5, source="c")), 2.0)
    assert a.on_message("c", pkt(alive("b", 5)), 3.0).events == []  # stays dead
    out = a.on_message("b", pkt(alive("b", 6)), 4.0)
    assert [type(e) for e in out.events] == [MemberJoined]


def test_graceful_leave_is_reported_as_left_not_died() -> None:
    a = with_members("b")
    out = a.on_message("b", pkt(wire.Dead(node="b", incarnation=1, source="b")), 1.0)
    assert [type(e) for e in out.events] == [MemberLeft]


def test_metadata_change_with_new_incarnation_is_an_update() -> None:
    a = with_members("b")
    out = a.on_message("b", pkt(alive("b", 2, api_addr="ws://new:1")), 1.0)
    assert [type(e) for e in out.events] == [MemberUpdated]
    assert out.events[0].member.meta.api_addr == "ws://new:1"


def test_member_of_another_cluster_is_refused_and_counted() -> None:
    a = with_members()
    out = a.on_message("z", pkt(alive("z", 1, num_shards=99), alive("y", 1, cluster_name="other")), 1.0)
    assert out.events == [] and a.stats.dropped_foreign == 2
    assert [m.name for m in a.members()] == ["a"]


def test_live_member_claimed_at_another_address_is_refused() -> None:
    a = with_members("b")
    out = a.on_message("q", pkt(wire.Alive(node="b", incarnation=9, addr="q", meta=meta("b"))), 1.0)
    assert out.events == [] and {m.name: m.addr for m in a.members()}["b"] == "b"


def test_bad_frames_are_dropped_and_counted_never_raised() -> None:
    cfg = dataclasses.replace(CFG, cluster_key=b"k1")
    a = core("a", cfg)
    assert a.on_message("b", b"\xffgarbage", 1.0).send == []
    a.on_message("b", wire.encode_gossip(pkt(wire.Ping(seq=1, target="a")), b"k2"), 1.0)
    a.on_message("b", wire.encode_gossip(pkt(wire.Ping(seq=1, target="a"))), 1.0)
    assert a.stats.dropped_malformed == 1 and a.stats.dropped_auth == 2
    good = a.on_message("b", wire.encode_gossip(pkt(wire.Ping(seq=1, target="a")), b"k1"), 1.0)
    assert sent(good, wire.Ack) == [("b", wire.Ack(seq=1))]


def test_push_pull_on_the_wrong_channel_is_dropped() -> None:
    a = core("a")
    req = wire.PushPullRequest(source="b", join=True, members=[])
    assert a.on_message("b", req, 1.0).stream == []
    two = pkt(wire.Ping(seq=1, target="a"), wire.Ping(seq=2, target="a"))
    assert a.on_message("b", two, 1.0, stream=True).stream == []
    assert a.stats.dropped_unexpected == 2


def test_piggybacked_broadcasts_never_exceed_the_packet_size() -> None:
    cfg = dataclasses.replace(CFG, packet_bytes_max=600)
    a = with_members(*[f"m{i:02d}" for i in range(40)], cfg=cfg)
    out = a.on_message("m00", pkt(wire.Ping(seq=1, target="a")), 1.0)
    [(_, p)] = out.send
    assert len(p.messages) > 2
    assert len(wire.encode_gossip(p, b"key")) <= 600


def test_push_pull_interval_grows_with_log2_above_32_members() -> None:
    assert [push_pull_interval(30.0, n) for n in (1, 32, 33, 64, 65, 200)] == [
        30.0, 30.0, 60.0, 60.0, 90.0, 120.0]


# --- several nodes ------------------------------------------------------------------


def test_nodes_join_through_one_seed_and_all_see_each_other() -> None:
    c = Cluster(seed=3)
    c.add("n0", [])
    for i in range(1, 6):
        c.add(f"n{i}", ["n0"])
    c.run(5.0)
    for name in c.cores:
        assert c.view(name) == {f"n{i}": MemberState.ALIVE for i in range(6)}
        assert c.cores[name].joined
    assert c.kinds("n3", "n5") == ["MemberJoined"]


def test_join_is_retried_until_a_seed_answers() -> None:
    c = Cluster(seed=1)
    c.add("b", ["a"])  # a is not running yet
    c.run(CFG.push_pull_timeout_s - 1.0)
    assert not c.cores["b"].joined
    c.add("a", [])
    c.run(CFG.push_pull_timeout_s + 2.0)
    assert c.cores["b"].joined and c.view("a")["b"] == MemberState.ALIVE


def test_crashed_node_is_declared_dead_by_everyone() -> None:
    c = Cluster(seed=5)
    for i in range(5):
        c.add(f"n{i}", [] if i == 0 else ["n0"])
    c.run(3.0)
    c.net.crash("n4")
    c.run(12.0)
    for i in range(4):
        assert c.view(f"n{i}")["n4"] == MemberState.DEAD
        assert c.kinds(f"n{i}", "n4")[-2:] == ["MemberSuspected", "MemberDied"]
    c.run(30.0)  # forgotten after gossip_to_the_dead_s
    assert all("n4" not in c.view(f"n{i}") for i in range(4))


def test_leaving_node_is_reported_left_everywhere() -> None:
    c = Cluster(seed=6)
    for i in range(4):
        c.add(f"n{i}", [] if i == 0 else ["n0"])
    c.run(3.0)
    c.apply("n3", c.cores["n3"].leave(c.net.now))
    c.run(2.0)
    for i in range(3):
        assert c.view(f"n{i}")["n3"] == MemberState.LEFT
        assert c.kinds(f"n{i}", "n3")[-1] == "MemberLeft"


def test_paused_node_refutes_and_is_not_declared_dead() -> None:
    c = Cluster(seed=7, cfg=SwimConfig.lan(), faults=LinkFaults(loss=0.05))
    for i in range(8):
        c.add(f"n{i}", [] if i == 0 else ["n0"])
    c.run(5.0)
    c.net.pause("n5", c.net.now + 3.0)
    c.run(30.0)
    assert c.cores["n5"].incarnation > 1  # it refuted the suspicion
    for i in range(8):
        assert set(c.view(f"n{i}").values()) == {MemberState.ALIVE}


def test_partitioned_node_rejoins_after_the_heal_by_refuting() -> None:
    c = Cluster(seed=8)
    for i in range(4):
        c.add(f"n{i}", [] if i == 0 else ["n0"])
    c.run(3.0)
    c.net.partition(["n3"])
    c.run(60.0)  # long enough that both sides forgot each other
    assert "n3" not in c.view("n0") and set(c.view("n3")) == {"n3"}
    c.net.heal()
    c.run(CFG.push_pull_interval_s + 10.0)  # n3 retries its seed n0, refutes its death
    for i in range(4):
        assert set(c.view(f"n{i}").values()) == {MemberState.ALIVE}
        assert len(c.view(f"n{i}")) == 4
    assert c.kinds("n0", "n3")[-1] == "MemberJoined"


def test_metadata_update_reaches_other_members() -> None:
    c = Cluster(seed=9)
    for i in range(3):
        c.add(f"n{i}", [] if i == 0 else ["n0"])
    c.run(3.0)
    c.apply("n2", c.cores["n2"].update_meta(meta("n2", api_addr="ws://moved:1"), c.net.now))
    c.run(3.0)
    assert [m.meta.api_addr for m in c.cores["n0"].members() if m.name == "n2"] == ["ws://moved:1"]
    assert c.kinds("n0", "n2")[-1] == "MemberUpdated"


def test_keyed_cluster_ignores_a_node_without_the_key() -> None:
    keyed = dataclasses.replace(CFG, cluster_key=b"secret")
    c = Cluster(seed=10, cfg=keyed)
    c.add("n0", [])
    c.add("n1", ["n0"])
    c.cfg = CFG  # the next node has no key
    c.add("n2", ["n0"])
    c.run(5.0)
    assert set(c.view("n0")) == {"n0", "n1"}
    assert c.cores["n0"].stats.dropped_auth > 0


# --- last contact (for `shoal cluster status`) -----------------------------------------


def _contact(a: Swim, name: str) -> float | None:
    return {m.name: m.last_contact for m in a.members()}[name]


def test_last_contact_is_the_time_of_the_targets_ack_and_not_of_rumours() -> None:
    a = with_members("b")
    assert _contact(a, "b") is None  # only heard of through gossip so far
    target, seq = _probe(a, 1.0)
    a.on_message(target, pkt(wire.Ack(seq=seq)), 1.05)
    assert _contact(a, "b") == 1.05
    a.on_message("c", pkt(alive("b", inc=2)), 3.0)  # a rumour is not contact
    assert _contact(a, "b") == 1.05


def test_last_contact_counts_a_relayed_ack_and_a_push_pull_from_the_member() -> None:
    a = with_members("b", "c")
    target, seq = _probe(a, 1.0)
    a.on_timer(("probe_timeout", seq), 1.2)
    a.on_message("c", pkt(wire.Ack(seq=seq)), 1.5)  # relayed by a helper: target answered
    assert _contact(a, target) == 1.5
    other = ({"b", "c"} - {target}).pop()
    req = wire.PushPullRequest(source=other, join=False, members=[])
    a.on_message(other, req, 4.0, stream=True)
    assert _contact(a, other) == 4.0


def test_decode_frame_counts_bad_frames_and_returns_none() -> None:
    keyed = core("a", dataclasses.replace(CFG, cluster_key=b"k" * 32))
    plain_frame = wire.encode_gossip(pkt(wire.Ack(seq=1)))
    assert keyed.decode_frame(plain_frame) is None and keyed.stats.dropped_auth == 1
    assert keyed.decode_frame(b"\x77\xff\xff") is None and keyed.stats.dropped_malformed == 1
    good = wire.encode_gossip(pkt(wire.Ack(seq=1)), b"k" * 32)
    assert keyed.decode_frame(good) == pkt(wire.Ack(seq=1))
