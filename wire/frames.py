"""Client/worker framing: ops, request and response envelopes.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import cbor2

from shoal.wire.codec import from_plain, loads_plain, to_plain
from shoal.wire.errors import Code, ShoalError, WireError


class Op(StrEnum):
    """Request operations. The dispatcher maps each to its request and response types."""

    HANDSHAKE = "handshake"
    START_WORKFLOW = "start_workflow"
    GET_RESULT = "get_result"
    DESCRIBE_WORKFLOW = "describe_workflow"
    GET_HISTORY = "get_history"
    LIST_WORKFLOWS = "list_workflows"
    POLL_WORKFLOW_TASK = "poll_workflow_task"
    COMPLETE_WORKFLOW_TASK = "complete_workflow_task"
    FAIL_WORKFLOW_TASK = "fail_workflow_task"
    POLL_ACTIVITY_TASK = "poll_activity_task"
    COMPLETE_ACTIVITY_TASK = "complete_activity_task"
    FAIL_ACTIVITY_TASK = "fail_activity_task"
    CANCEL_REQUEST = "cancel_request"  # the caller gave up on request ``request_id``
    # --- workflow interactions (issue 4) ---
    TERMINATE_WORKFLOW = "terminate_workflow"
    SIGNAL_WORKFLOW = "signal_workflow"
    SIGNAL_WITH_START_WORKFLOW = "signal_with_start_workflow"
    REQUEST_CANCEL_WORKFLOW = "request_cancel_workflow"
    QUERY_WORKFLOW = "query_workflow"
    RESPOND_QUERY_TASK = "respond_query_task"
    UPDATE_WORKFLOW = "update_workflow"
    RECORD_ACTIVITY_HEARTBEAT = "record_activity_heartbeat"
    RESPOND_ACTIVITY_TASK_CANCELED = "respond_activity_task_canceled"
    COUNT_WORKFLOWS = "count_workflows"
    # --- cluster membership (issue 5) ---
    CLUSTER_STATUS = "cluster_status"
    GOSSIP_STREAM = "gossip_stream"  # peer link: one gossip stream frame in, its answer out
    REPL_MESSAGES = "repl_messages"  # peer link: a batch of replication messages, one way
    # fault-injection drill: cut this node off from peers (gossip, replication, requests)
    NETWORK_FAULTS = "network_faults"
    # --- the cluster's peer ops (issue 7): one node asks another to act on what it owns ---
    START_TASK = "start_task"  # partition owner -> shard leader: record a matched task started
    ADD_TASKS = "add_tasks"  # shard leader -> partition owner: tasks for its matching
    START_CHILD_RUN = "start_child_run"  # parent's shard -> child's shard leader
    RECORD_CHILD_CLOSED = "record_child_closed"  # child's shard -> parent's shard leader
    CHANGE_RUN = "change_run"  # signal / cancel / terminate another workflow for a workflow
    SCAN_VISIBILITY = "scan_visibility"  # list/count: the rows of the shards a node leads
    # --- update handles (issue 17) ---
    POLL_WORKFLOW_UPDATE = "poll_workflow_update"  # wait for an update's outcome by its id


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """Envelope of every client frame: ``{id, op, body}``."""

    id: int
    op: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorBody:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """Envelope of every answer: ``{id, ok}`` or ``{id, err}``."""

    id: int
    ok: dict[str, Any] | None = None
    err: ErrorBody | None = None


def encode_request(req_id: int, op: Op, body: Any) -> bytes:
    return cbor2.dumps({"id": req_id, "op": str(op), "body": to_plain(body)})


def encode_ok(req_id: int, body: Any) -> bytes:
    return cbor2.dumps({"id": req_id, "ok": to_plain(body)})


def encode_err(req_id: int, err: ShoalError) -> bytes:
    details = {k: v for k, v in err.details.items() if isinstance(v, (str, int, float, bool))}
    return cbor2.dumps(
        {"id": req_id, "err": {"code": str(err.code), "message": err.message, "details": details}}
    )


def decode_request(data: bytes) -> Request:
    """Decode a client frame's envelope; the body is checked later against the op's type."""
    req = from_plain(Request, loads_plain(data))
    if req.id < 0:
        raise WireError(Code.MALFORMED, "request id must be >= 0")
    return req


def decode_response(data: bytes) -> Response:
    return from_plain(Response, loads_plain(data))
