"""The replica is composed of role objects that stand on ``role_base`` alone, and a role
object can be swapped for a test's. (No circles, no mixins: tests/unit/test_layering.py.)"""

from __future__ import annotations

import random

from helpers.import_graph import GRAPH
from shoal import wire
from shoal.node.replication import Replica, ReplicaConfig
from shoal.node.replication.leader import Leader

PKG = "shoal.node.replication"


def test_role_modules_stand_on_role_base_not_on_each_other_or_core() -> None:
    for role in ("candidate", "leader"):
        deps = set(GRAPH[f"{PKG}.{role}"])
        assert f"{PKG}.role_base" in deps
        assert not deps & {f"{PKG}.core", f"{PKG}.candidate", f"{PKG}.leader"}, (role, deps)


def test_an_injected_leader_role_runs_the_term() -> None:
    started: list[Leader] = []

    class Recording(Leader):
        def start(self, now: float) -> None:
            started.append(self)
            super().start(now)

    r = Replica("a", 0, ReplicaConfig(fallback=False), random.Random(1), leader_role=Recording)
    r.bootstrap(wire.ShardConfig(voters=("a",)))
    r.on_persisted(wire.EPOCH_ZERO, 1, 0.0)
    r.campaign(0.0)
    assert len(started) == 1 and r.leading is started[0] and r.role.value == "leader"
