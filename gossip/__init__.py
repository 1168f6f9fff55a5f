"""SWIM + Lifeguard cluster membership (DESIGN §5): a sans-IO core per node.

Public API: :class:`~shoal.gossip.swim.Swim` (the core), :class:`SwimConfig` (timing,
``lan()`` / ``small()`` presets), :class:`Output` and the membership events. The trio shell
(UDP and the peer link) is ``node/cluster/membership.py``; ``sim/gossip_sim.py`` drives many cores
over a fake network.
"""

from shoal.gossip.config import SwimConfig
from shoal.gossip.events import (
    MemberDied, MemberEvent, MemberJoined, MemberLeft, MemberRecovered, MemberSuspected,
    MemberUpdated, Output, SwimStats, TimerKey,
)
from shoal.gossip.members import MemberInfo
from shoal.gossip.swim import Swim

__all__ = [
    "MemberDied", "MemberEvent", "MemberInfo", "MemberJoined", "MemberLeft", "MemberRecovered",
    "MemberSuspected", "MemberUpdated", "Output", "Swim", "SwimConfig", "SwimStats", "TimerKey",
]
