"""A partition of five real node processes heals by push-pull (issue 5).

Five nodes (small preset) join; the partition drill (``Op.NETWORK_FAULTS``) on every node
splits them into {n0, n1} | {n2, n3, n4}; each side comes to see the other as dead; the
drill is cleared everywhere and every node sees all five alive again. The detection and
heal times are printed; the heal is asserted only against a generous bound.
"""

from __future__ import annotations

import time

import pytest
import trio

from helpers.node_cluster import (
    cli_status, run_cli, running_cluster, views, wait_all_alive, wait_each_sees,
)

pytestmark = pytest.mark.timeout(90)

CONVERGE_BOUND_S = 20.0  # see test_cluster_membership.py
# The side of three confirms its suspicions and sees the other dead in ~2-9 s. A side of two
# mostly waits out Lifeguard's longest suspicion timeout (6 times the shortest):
# its one possible confirmation is a rumour that is often spent on packets to the other,
# blocked, side. Measured 9-25 s with 1 s probes, 10-13 s with 0.5 s probes.
DETECTION_BOUND_S = 30.0
# Push-pull runs every 15 s (small preset); each round a node also tries one member it
# thinks dead and its seeds when not alive, so one round after the drill is cleared the
# sides find each other. Two rounds, for a round started just before the clearing.
HEAL_BOUND_S = 30.0


async def test_partition_is_seen_as_dead_on_both_sides_and_heals_when_cleared(tmp_path) -> None:
    with running_cluster(tmp_path, 5) as nodes:
        async with views(nodes) as v:
            await wait_all_alive(v, nodes, CONVERGE_BOUND_S)
            me = {n.address: next(m for m in (await v.status(n)).members if m.is_self)
                  for n in nodes}
            sides = [nodes[:2], nodes[2:]]

            # n0 through the command line, as an operator runs the drill; the rest directly.
            blocks = {n.address: [me[o.address].gossip_addr for o in other]
                      for side, other in (sides, sides[::-1]) for n in side}
            drill = [arg for addr in blocks[nodes[0].address] for arg in ("--block", addr)]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_cli, nodes[0], "cluster", "partition-drill", *drill)
                for n in nodes[1:]:
                    nursery.start_soon(v.block, n, blocks[n.address])
            t0 = time.monotonic()
            # Each side's view of each member of the other side, polled together: a member
            # seen dead is forgotten (reclaimed) some seconds later.
            seen = await wait_each_sees(v, {n.address: [me[o.address].name for o in other]
                                            for side, other in (sides, sides[::-1])
                                            for n in side},
                                        "dead", DETECTION_BOUND_S)
            split_s = [max(t for (obs, _), t in seen.items() if obs in {n.address for n in side})
                       for side in sides]
            during = {n.address: (await v.status(n)).stats for n in nodes}
            assert (await cli_status(nodes[0]))["blocked_addrs"] == sorted(blocks[nodes[0].address])

            t1 = time.monotonic()
            async with trio.open_nursery() as nursery:
                for n in nodes:
                    nursery.start_soon(v.block, n, [])
            await wait_all_alive(v, nodes, HEAL_BOUND_S)
            healed_s = time.monotonic() - t1
            after = {n.address: await v.status(n) for n in nodes}

    push_pulls = sum(after[n.address].stats["push_pulls"] - during[n.address]["push_pulls"]
                     for n in nodes)
    print(f"\npartition 2|3 (small preset): the side of two saw the other side dead "
          f"{split_s[0]:.2f}s after the drill was set, the side of three {split_s[1]:.2f}s; "
          f"all five alive everywhere "
          f"{healed_s:.2f}s after it was cleared ({push_pulls} push-pulls completed meanwhile)")
    for n in nodes:
        s = during[n.address]
        # Each side drops its own sends, so little is left for the other to drop on receipt.
        assert s["fault_dropped_out"] > 0 and s["fault_skipped_streams"] > 0, s
        assert after[n.address].blocked_addrs == []
    assert healed_s < HEAL_BOUND_S
