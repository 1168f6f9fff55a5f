"""sim/network.py: the shared fake network — faults, timers, pauses, crashes, determinism."""

from __future__ import annotations

import random

from shoal.sim.network import Action, Delivered, LinkFaults, Network, TimerFired


def _drain(net: Network, until: float | None = None) -> list[tuple[float, object]]:
    out: list[tuple[float, object]] = []
    net.run_until(net.now + 100.0 if until is None else until,
                  lambda ev: out.append((net.now, ev)))
    return out


def test_message_arrives_after_the_link_delay() -> None:
    net = Network(random.Random(1), LinkFaults(delay_s=0.01))
    net.send("a", "b", "hi", size=2)
    [(t, ev)] = _drain(net)
    assert t == 0.01 and ev == Delivered("a", "b", "hi", False, 0.0)
    assert net.stats["a"].sent_bytes == 2 and net.stats["b"].received_msgs == 1


def test_total_loss_drops_datagrams_but_not_reliable_messages() -> None:
    net = Network(random.Random(1), LinkFaults(loss=1.0))
    net.send("a", "b", "udp")
    net.send("a", "b", "tcp", reliable=True)
    assert [ev.msg for _, ev in _drain(net)] == ["tcp"]
    assert net.stats["a"].dropped_loss == 1


def test_loss_rate_is_close_to_the_setting() -> None:
    net = Network(random.Random(7), LinkFaults(loss=0.3))
    for i in range(2000):
        net.send("a", "b", i)
    got = len(_drain(net))
    assert 1300 < got < 1500


def test_duplication_delivers_a_message_twice() -> None:
    net = Network(random.Random(1), LinkFaults(duplicate=1.0))
    net.send("a", "b", "x")
    assert [ev.msg for _, ev in _drain(net)] == ["x", "x"]


def test_jitter_reorders_datagrams_but_reliable_stream_stays_fifo() -> None:
    net = Network(random.Random(3), LinkFaults(delay_s=0.001, jitter_s=0.05))
    for i in range(50):
        net.send("a", "b", ("udp", i))
        net.send("a", "c", ("tcp", i), reliable=True)
    evs = [ev.msg for _, ev in _drain(net)]
    udp = [i for kind, i in evs if kind == "udp"]
    tcp = [i for kind, i in evs if kind == "tcp"]
    assert sorted(udp) == list(range(50)) and udp != list(range(50))
    assert tcp == list(range(50))


def test_partition_drops_across_groups_and_heal_restores() -> None:
    net = Network(random.Random(1))
    net.partition(["a"], ["b", "c"])
    net.send("a", "b", 1)
    net.send("b", "c", 2)
    assert [ev.msg for _, ev in _drain(net)] == [2]
    net.heal()
    net.send("a", "b", 3)
    assert [ev.msg for _, ev in _drain(net)] == [3]


def test_one_way_cut_blocks_only_its_direction() -> None:
    net = Network(random.Random(1))
    net.cut("a", "b")
    net.send("a", "b", 1)
    net.send("b", "a", 2)
    assert [ev.msg for _, ev in _drain(net)] == [2]


def test_rearming_a_timer_replaces_it_and_cancel_disarms() -> None:
    net = Network(random.Random(1))
    net.set_timer("a", "probe", 1.0)
    net.set_timer("a", "probe", 2.0)
    net.set_timer("a", "other", 1.5)
    net.cancel_timer("a", "other")
    assert _drain(net) == [(2.0, TimerFired("a", "probe"))]


def test_paused_node_gets_held_events_in_order_when_it_resumes() -> None:
    net = Network(random.Random(1), LinkFaults(delay_s=0.1))
    net.pause("b", 5.0)
    net.set_timer("b", "t", 1.0)
    net.send("a", "b", "m")  # due at 0.1, before the timer
    net.set_timer("a", "t", 2.0)  # a keeps running
    got = _drain(net)
    assert [(t, type(ev).__name__) for t, ev in got] == [
        (2.0, "TimerFired"), (5.0, "Delivered"), (5.0, "TimerFired")]


def test_crash_discards_timers_and_messages_and_breaks_streams() -> None:
    net = Network(random.Random(1), LinkFaults(delay_s=0.1))
    net.set_timer("b", "t", 1.0)
    net.send("a", "b", "stream", reliable=True)
    net.crash("b")
    net.send("a", "b", "udp")
    assert _drain(net, 2.0) == []
    net.restart("b")
    net.send("a", "b", "after")
    assert [ev.msg for _, ev in _drain(net)] == ["after"]


def test_actions_run_at_their_time() -> None:
    net = Network(random.Random(1))
    seen: list[float] = []
    net.call_at(3.0, lambda: seen.append(net.now), "mark")
    [(t, ev)] = _drain(net)
    assert seen == [3.0] and isinstance(ev, Action) and ev.label == "mark"


def test_same_seed_gives_the_same_trace() -> None:
    def trace(seed: int) -> list[tuple[float, object]]:
        net = Network(random.Random(seed), LinkFaults(loss=0.2, jitter_s=0.01, duplicate=0.1))
        for i in range(200):
            net.send(i % 3, (i + 1) % 3, i)
        return [(t, ev.msg) for t, ev in _drain(net)]

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_run_until_stops_the_clock_at_the_bound() -> None:
    net = Network(random.Random(1))
    net.set_timer("a", "t", 10.0)
    assert _drain(net, 4.0) == [] and net.now == 4.0
    assert _drain(net, 10.0) == [(10.0, TimerFired("a", "t"))]
