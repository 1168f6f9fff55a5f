"""Cluster status and the peer ops nodes send each other (task hand-offs, child runs, scans).

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.wire.api import (
    ActivityTask,
    ListWorkflowsRequest,
    StartWorkflowRequest,
    WorkflowExecutionInfo,
    WorkflowTask,
)
from shoal.wire.values import Failure, Payloads, WorkflowExecution, WorkflowExecutionStatus

# --- cluster membership (issue 5) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatusRequest:
    """Ask a node for its view of the cluster (``shoal cluster status``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterMember:
    """One member as the answering node sees it."""

    name: str  # the member's node id
    state: str  # "alive", "suspect", "dead" or "left"
    incarnation: int
    gossip_addr: str  # HOST:PORT of its UDP probes and peer link
    api_addr: str  # ws:// address for clients and workers
    last_contact_age_s: float | None = None  # since it last answered us; None: never (or us)
    is_self: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatusResponse:
    node: str  # the answering node's id
    cluster_name: str
    num_shards: int
    members: list[ClusterMember] = field(default_factory=list)
    health_score: int = 0  # Lifeguard local health: 0 is healthy
    stats: dict[str, int] = field(default_factory=dict)  # gossip counters, by name
    # Peer gossip addresses a fault drill (``Op.NETWORK_FAULTS``) cuts us off from; normally
    # empty. Shown so a forgotten drill is not mistaken for a network fault.
    blocked_addrs: list[str] = field(default_factory=list)
    # What the answering node owns (issue 7): the shards it leads, those it only replicates,
    # those it leads with fewer voters than the replication factor the live members allow,
    # the task queues its matching holds, and routing counters (requests forwarded, ...).
    shards_led: list[int] = field(default_factory=list)
    shards_replicated: list[int] = field(default_factory=list)
    shards_under_replicated: list[int] = field(default_factory=list)
    task_queues: list[str] = field(default_factory=list)
    routing: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipStreamRequest:
    """A peer's gossip stream message (push-pull, fallback ping) over the peer link.
    ``frame`` is an ``encode_gossip`` frame, authenticated like a UDP packet.
    ``source_addr`` is the sender's advertised gossip address (``HOST:PORT``; empty from an
    older sender); only a fault drill looks at it, since a fallback ping does not name its
    sender. It is not covered by the frame's MAC, so it decides nothing else."""

    frame: bytes
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplMessagesRequest:
    """A batch of replication messages from node ``src`` over the peer link, in send order.
    Each frame is an ``encode_repl`` frame; a frame that does not decode is dropped alone."""

    src: str
    frames: list[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipStreamResponse:
    """The answer frame; empty when there is none (or the request was dropped)."""

    frame: bytes = b""


NETWORK_FAULT_ADDRS_MAX = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkFaultsRequest:
    """A FAULT-INJECTION DRILL, not for normal operation: make this node behave as if the
    network between it and the peers at ``blocked_addrs`` were cut. Until the next request,
    it drops UDP gossip to and from those peers and neither sends gossip stream messages
    (push-pull, fallback pings) to them nor accepts theirs; drops the replication messages
    it would send them; fails the requests it would forward to them (and task hand-offs)
    as a lost connection would; and closes their peer connections, so what they forward
    here is never served. Clients and workers connected to this node are not affected.
    Run it on every node of one side, naming the other side, to partition a cluster; an
    empty list clears the drill. Each request replaces the last. Addresses are members'
    gossip addresses (``gossip_addr`` in ``shoal cluster status``), ``HOST:PORT``.
    Answered with :class:`Empty`; a bad address is ``INVALID_ARGUMENT``."""

    blocked_addrs: list[str] = field(default_factory=list)


# --- the cluster's peer ops (issue 7) ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDispatch:
    """A workflow or activity task (or a query, ``query_id`` set) handed to matching."""

    shard: int
    task_id: int
    kind: int  # records.TransferKind: 1 workflow task, 2 activity task
    namespace: str
    workflow_id: str
    run_id: str
    task_queue: str
    scheduled_event_id: int
    attempt: int
    query_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTaskRequest:
    """The partition owner matched ``task`` to a poller: record it started (shard leader)."""

    task: TaskDispatch
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTaskResponse:
    """What the poller gets; both None: the task went stale (already started, or gone)."""

    workflow_task: WorkflowTask | None = None
    activity_task: ActivityTask | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddTasksRequest:
    """Tasks for the receiving node's matching (it owns their partitions, as the sender
    sees the ring); duplicates are dropped by (shard, task_id)."""

    tasks: list[TaskDispatch] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildRunRequest:
    """Start the child a parent's StartChildWorkflowExecutionInitiated event names."""

    request: StartWorkflowRequest
    parent_namespace: str
    parent: WorkflowExecution
    initiated_event_id: int
    run_id: str  # the child's run id if this call starts it
    # The top of the parent's chain, which the child inherits (None from an older peer:
    # the child's root is then unknown and reported as such).
    root: WorkflowExecution | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildClose:
    """How a child's chain ended, as its parent records it."""

    run_id: str
    status: WorkflowExecutionStatus
    result: Payloads | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordChildClosedRequest:
    parent: WorkflowExecution
    initiated_event_id: int
    child: ChildClose


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRunRequest:
    """A workflow signals, cancels or terminates another one (``action``: ``signal``,
    ``cancel`` or ``terminate``). With ``expect_parent_workflow_id``, only a child of that
    parent (and of event ``expect_initiated_event_id`` unless it is 0) is changed."""

    execution: WorkflowExecution
    action: str
    signal_name: str = ""
    input: Payloads = field(default_factory=list)
    reason: str = ""
    identity: str = ""
    request_id: str = ""
    expect_parent_workflow_id: str | None = None
    expect_initiated_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanVisibilityRequest:
    """The visibility rows of ``shards`` (those the asked node leads) that a list request
    selects; the asking node merges, sorts and pages."""

    shards: list[int]
    request: ListWorkflowsRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanVisibilityResponse:
    executions: list[WorkflowExecutionInfo] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)  # not led there after all
