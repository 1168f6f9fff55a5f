"""Each op's request and response body types (the dispatcher's contract) and the peer-only ops.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

import typing
from typing import Any

from shoal.wire.api import (
    CancelRequestRequest,
    CompleteActivityTaskRequest,
    CompleteWorkflowTaskRequest,
    CompleteWorkflowTaskResponse,
    CountWorkflowsRequest,
    CountWorkflowsResponse,
    DescribeWorkflowRequest,
    DescribeWorkflowResponse,
    Empty,
    FailActivityTaskRequest,
    FailWorkflowTaskRequest,
    GetHistoryRequest,
    GetHistoryResponse,
    GetResultRequest,
    GetResultResponse,
    HandshakeRequest,
    HandshakeResponse,
    ListWorkflowsRequest,
    ListWorkflowsResponse,
    PollActivityTaskRequest,
    PollActivityTaskResponse,
    PollWorkflowTaskRequest,
    PollWorkflowTaskResponse,
    PollWorkflowUpdateRequest,
    PollWorkflowUpdateResponse,
    QueryWorkflowRequest,
    QueryWorkflowResponse,
    RecordActivityHeartbeatRequest,
    RecordActivityHeartbeatResponse,
    RequestCancelWorkflowRequest,
    RespondActivityTaskCanceledRequest,
    RespondQueryTaskRequest,
    SignalWithStartWorkflowRequest,
    SignalWorkflowRequest,
    StartWorkflowRequest,
    StartWorkflowResponse,
    TerminateWorkflowRequest,
    UpdateWorkflowRequest,
    UpdateWorkflowResponse,
)
from shoal.wire.codec import from_plain
from shoal.wire.frames import Op
from shoal.wire.peer import (
    AddTasksRequest,
    ChangeRunRequest,
    ClusterStatusRequest,
    ClusterStatusResponse,
    GossipStreamRequest,
    GossipStreamResponse,
    NetworkFaultsRequest,
    RecordChildClosedRequest,
    ReplMessagesRequest,
    ScanVisibilityRequest,
    ScanVisibilityResponse,
    StartChildRunRequest,
    StartTaskRequest,
    StartTaskResponse,
)

# Ops only another node may send: on a connection whose handshake says ``peer`` (and, when
# the cluster has a key, proves it with ``peer_credentials``). GOSSIP_STREAM is not among
# them: its frames carry their own MAC, and a node with the wrong key must get far enough
# to be told CLUSTER_MISMATCH.
PEER_OPS = frozenset({
    Op.REPL_MESSAGES, Op.START_TASK, Op.ADD_TASKS, Op.START_CHILD_RUN,
    Op.RECORD_CHILD_CLOSED, Op.CHANGE_RUN, Op.SCAN_VISIBILITY,
})


def peer_credentials(cluster_key: bytes | None, identity: str) -> bytes | None:
    """What a node sends as ``HandshakeRequest.credentials`` on a peer connection: an
    HMAC-SHA256 of its identity under the cluster key (None without a key). Like gossip's
    MAC, it proves membership, not secrecy: the link itself is not encrypted."""
    if cluster_key is None:
        return None
    import hashlib
    import hmac
    return hmac.new(cluster_key, b"shoal-peer-v1\x00" + identity.encode(), hashlib.sha256).digest()


# Request and response body type of each op: the dispatcher's contract.
OP_TYPES: dict[Op, tuple[type, type]] = {
    Op.HANDSHAKE: (HandshakeRequest, HandshakeResponse),
    Op.START_WORKFLOW: (StartWorkflowRequest, StartWorkflowResponse),
    Op.GET_RESULT: (GetResultRequest, GetResultResponse),
    Op.DESCRIBE_WORKFLOW: (DescribeWorkflowRequest, DescribeWorkflowResponse),
    Op.GET_HISTORY: (GetHistoryRequest, GetHistoryResponse),
    Op.LIST_WORKFLOWS: (ListWorkflowsRequest, ListWorkflowsResponse),
    Op.POLL_WORKFLOW_TASK: (PollWorkflowTaskRequest, PollWorkflowTaskResponse),
    Op.COMPLETE_WORKFLOW_TASK: (CompleteWorkflowTaskRequest, CompleteWorkflowTaskResponse),
    Op.FAIL_WORKFLOW_TASK: (FailWorkflowTaskRequest, Empty),
    Op.POLL_ACTIVITY_TASK: (PollActivityTaskRequest, PollActivityTaskResponse),
    Op.COMPLETE_ACTIVITY_TASK: (CompleteActivityTaskRequest, Empty),
    Op.FAIL_ACTIVITY_TASK: (FailActivityTaskRequest, Empty),
    Op.CANCEL_REQUEST: (CancelRequestRequest, Empty),
    # workflow interactions (issue 4)
    Op.TERMINATE_WORKFLOW: (TerminateWorkflowRequest, Empty),
    Op.SIGNAL_WORKFLOW: (SignalWorkflowRequest, Empty),
    Op.SIGNAL_WITH_START_WORKFLOW: (SignalWithStartWorkflowRequest, StartWorkflowResponse),
    Op.REQUEST_CANCEL_WORKFLOW: (RequestCancelWorkflowRequest, Empty),
    Op.QUERY_WORKFLOW: (QueryWorkflowRequest, QueryWorkflowResponse),
    Op.RESPOND_QUERY_TASK: (RespondQueryTaskRequest, Empty),
    Op.UPDATE_WORKFLOW: (UpdateWorkflowRequest, UpdateWorkflowResponse),
    Op.RECORD_ACTIVITY_HEARTBEAT: (RecordActivityHeartbeatRequest, RecordActivityHeartbeatResponse),
    Op.RESPOND_ACTIVITY_TASK_CANCELED: (RespondActivityTaskCanceledRequest, Empty),
    Op.COUNT_WORKFLOWS: (CountWorkflowsRequest, CountWorkflowsResponse),
    Op.CLUSTER_STATUS: (ClusterStatusRequest, ClusterStatusResponse),
    Op.GOSSIP_STREAM: (GossipStreamRequest, GossipStreamResponse),
    Op.REPL_MESSAGES: (ReplMessagesRequest, Empty),
    Op.NETWORK_FAULTS: (NetworkFaultsRequest, Empty),
    Op.START_TASK: (StartTaskRequest, StartTaskResponse),
    Op.ADD_TASKS: (AddTasksRequest, Empty),
    Op.START_CHILD_RUN: (StartChildRunRequest, StartWorkflowResponse),
    Op.RECORD_CHILD_CLOSED: (RecordChildClosedRequest, Empty),
    Op.CHANGE_RUN: (ChangeRunRequest, Empty),
    Op.SCAN_VISIBILITY: (ScanVisibilityRequest, ScanVisibilityResponse),
    Op.POLL_WORKFLOW_UPDATE: (PollWorkflowUpdateRequest, PollWorkflowUpdateResponse),
}


def decode_body(op: Op, body: Any) -> Any:
    """Check a request body against its op's request type."""
    return from_plain(OP_TYPES[op][0], body, f"{op}.body")


def payloads_size(payloads: typing.Iterable[bytes] | None) -> int:
    return sum(len(p) for p in payloads or ())
