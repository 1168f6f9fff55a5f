"""Request and response bodies of the client/worker API.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from shoal.wire.commands import Command
from shoal.wire.errors import DEFAULT_NAMESPACE
from shoal.wire.history import (
    HistoryEvent,
    UpdateOutcome,
    UpdateRequest,
    WorkflowTaskFailedCause,
)
from shoal.wire.values import (
    Failure,
    IdReusePolicy,
    Payloads,
    QueryRejectCondition,
    RetryPolicy,
    WorkflowExecution,
    WorkflowExecutionStatus,
)

# --- request and response bodies -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRequest:
    protocol_version: int
    namespace: str = DEFAULT_NAMESPACE
    identity: str = ""
    credentials: bytes | None = None
    # A node forwarding a request it does not own: the answering node serves it or answers
    # NOT_LEADER with a hint (details ``leader``/``addr``); it never forwards it again.
    peer: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeResponse:
    protocol_version: int
    node_id: str
    cluster_name: str
    num_shards: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflowRequest:
    workflow_id: str
    workflow_type: str
    task_queue: str
    request_id: str  # a retried start with the same request id returns the same run
    input: Payloads = field(default_factory=list)
    id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflowResponse:
    run_id: str
    started: bool = True  # False when a retried request id found the run it had started


@dataclass(frozen=True, slots=True, kw_only=True)
class GetResultRequest:
    execution: WorkflowExecution
    wait_s: float = 30.0  # long-poll bound; the answer says RUNNING if it passes
    follow_runs: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GetResultResponse:
    run_id: str
    status: WorkflowExecutionStatus
    result: Payloads | None = None
    failure: Failure | None = None
    new_execution_run_id: str | None = None  # set when the run continued as new or retried


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionInfo:
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: float
    close_time: float | None = None
    execution_time: float | None = None
    history_length: int = 0
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)
    # Temporal's WorkflowExecutionInfo fields added for issue 17 (defaults keep old rows
    # and peers readable): the namespace, the parent that started this run as a child,
    # the top of its parent chain (a run with no parent is its own root), and the bytes of
    # its stored history batches (Temporal's ``history_size_bytes``).
    namespace: str = ""
    parent_execution: WorkflowExecution | None = None
    root_execution: WorkflowExecution | None = None
    history_size_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingActivityInfo:
    activity_id: str
    activity_type: str
    state: str  # SCHEDULED | STARTED | BACKING_OFF
    attempt: int
    scheduled_time: float
    last_started_time: float | None = None
    last_failure: Failure | None = None
    maximum_attempts: int = 0
    heartbeat_details: Payloads | None = None
    last_heartbeat_time: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingWorkflowTaskInfo:
    state: str  # SCHEDULED | STARTED
    scheduled_time: float
    attempt: int
    started_time: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeWorkflowRequest:
    execution: WorkflowExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeWorkflowResponse:
    info: WorkflowExecutionInfo
    pending_activities: list[PendingActivityInfo] = field(default_factory=list)
    pending_workflow_task: PendingWorkflowTaskInfo | None = None
    last_workflow_task_failure: Failure | None = None  # e.g. a non-determinism error


@dataclass(frozen=True, slots=True, kw_only=True)
class GetHistoryRequest:
    execution: WorkflowExecution
    next_page_token: bytes | None = None
    page_size: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class GetHistoryResponse:
    events: list[HistoryEvent]
    next_page_token: bytes | None = None  # None: no more events


@dataclass(frozen=True, slots=True, kw_only=True)
class ListWorkflowsRequest:
    status: WorkflowExecutionStatus | None = None
    workflow_type: str | None = None
    task_queue: str | None = None
    query: str = ""  # Temporal-style list filter (node/visibility/list_filter.py); ANDed with the rest
    page_size: int = 100
    next_page_token: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListWorkflowsResponse:
    executions: list[WorkflowExecutionInfo]
    next_page_token: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWorkflowsRequest:
    query: str = ""  # the list filter; ``GROUP BY ExecutionStatus`` fills ``groups``


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWorkflowsGroup:
    status: WorkflowExecutionStatus
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWorkflowsResponse:
    count: int
    groups: list[CountWorkflowsGroup] = field(default_factory=list)  # by count, largest first


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWorkflowTaskRequest:
    task_queue: str
    identity: str = ""
    wait_s: float = 30.0  # long-poll bound; an empty answer (no task_token) after it


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowQuery:
    query_type: str
    query_args: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTask:
    """A workflow task handed to a worker: the history it must replay up to ``started_event_id``."""

    task_token: bytes
    workflow_id: str
    run_id: str
    workflow_type: str
    attempt: int
    started_event_id: int
    previous_started_event_id: int
    history: list[HistoryEvent]
    scheduled_time: float
    started_time: float
    # A query task (no token, records nothing): answer it with RESPOND_QUERY_TASK.
    query_id: str = ""
    query: WorkflowQuery | None = None
    # Updates waiting for this run: the worker validates and accepts or rejects each.
    updates: list[UpdateRequest] = field(default_factory=list)
    # Taken from the worker's sticky queue: ``history`` holds only the events after
    # ``previous_started_event_id`` (the worker has the rest cached).
    sticky: bool = False
    # Queries that arrived while this run had events no worker had seen yet (Temporal's
    # consistent queries): answer each, by id, on the state after this task's activation,
    # in the completion's ``query_results``.
    queries: dict[str, WorkflowQuery] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWorkflowTaskResponse:
    task: WorkflowTask | None = None  # None: the long poll ended with no task


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryAnswer:
    """A worker's answer to one query: ``result``, or ``error`` (a message) if it failed."""

    result: Payloads = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteWorkflowTaskRequest:
    task_token: bytes
    commands: list[Command] = field(default_factory=list)
    identity: str = ""
    # Sticky execution: the worker keeps the run cached; send its next workflow task to this
    # queue with only new events, falling back to the normal queue after the timeout.
    sticky_task_queue: str = ""
    sticky_schedule_to_start_timeout_s: float = 5.0
    # Answers to the task's ``queries``, by query id.
    query_results: dict[str, QueryAnswer] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteWorkflowTaskResponse:
    """Activities started eagerly for the completing worker (see ``request_eager_execution``)."""

    activity_tasks: list[ActivityTask] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailWorkflowTaskRequest:
    task_token: bytes
    cause: WorkflowTaskFailedCause
    failure: Failure
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PollActivityTaskRequest:
    task_queue: str
    identity: str = ""
    wait_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTask:
    task_token: bytes
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: Payloads
    attempt: int
    scheduled_time: float
    current_attempt_scheduled_time: float
    started_time: float
    schedule_to_close_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    heartbeat_details: Payloads | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PollActivityTaskResponse:
    task: ActivityTask | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteActivityTaskRequest:
    task_token: bytes
    result: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailActivityTaskRequest:
    task_token: bytes
    failure: Failure
    last_heartbeat_details: Payloads | None = None
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Empty:
    """Body of an answer that carries nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequestRequest:
    """Stop running request ``request_id`` of this connection (e.g. a worker's long poll it
    no longer wants: without this, a task could be handed to a poll nobody awaits)."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskToken:
    """What a task token names; encoded with ``dumps`` and opaque to workers.

    ``scheduled_event_id`` and ``attempt`` fence stale tokens: a completion for an attempt
    the history no longer expects answers ``TASK_NOT_FOUND``.
    """

    namespace: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    attempt: int
    started_event_id: int = 0
    activity_id: str | None = None


# --- workflow interaction requests (issue 4) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminateWorkflowRequest:
    execution: WorkflowExecution
    reason: str = ""
    details: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalWorkflowRequest:
    execution: WorkflowExecution
    signal_name: str
    input: Payloads = field(default_factory=list)
    request_id: str = ""  # a retried signal with the same request id is recorded once
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalWithStartWorkflowRequest:
    """Signal the running workflow ``start.workflow_id``, starting it first if needed."""

    start: StartWorkflowRequest
    signal_name: str
    signal_input: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelWorkflowRequest:
    execution: WorkflowExecution
    reason: str = ""
    request_id: str = ""
    identity: str = ""

@dataclass(frozen=True, slots=True, kw_only=True)
class QueryWorkflowRequest:
    execution: WorkflowExecution
    query: WorkflowQuery
    timeout_s: float = 10.0  # how long to wait for a worker's answer
    # Refuse to query a closed run: NOT_OPEN (any closed run) or NOT_COMPLETED_CLEANLY
    # (closed other than COMPLETED). The answer then says ``rejected_status`` instead.
    reject_condition: QueryRejectCondition = QueryRejectCondition.NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryWorkflowResponse:
    result: Payloads = field(default_factory=list)
    rejected_status: WorkflowExecutionStatus | None = None  # set: rejected, no result


@dataclass(frozen=True, slots=True, kw_only=True)
class RespondQueryTaskRequest:
    """A worker's answer to a query task: ``result``, or ``error`` (a message) if it failed."""

    query_id: str
    result: Payloads = field(default_factory=list)
    error: str | None = None


class UpdateStage(IntEnum):
    """How far an update has got (Temporal's UpdateWorkflowExecutionLifecycleStage)."""

    ADMITTED = 1  # the node holds it; no worker has accepted it yet
    ACCEPTED = 2  # a worker's validator passed it and the Accepted event committed
    COMPLETED = 3  # its outcome is known (rejected, failed or returned)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateWorkflowRequest:
    execution: WorkflowExecution
    request: UpdateRequest
    wait_s: float = 60.0  # how long to wait for ``wait_for_stage``
    # ACCEPTED: answer once the update is accepted (or settled); COMPLETED: once settled.
    wait_for_stage: UpdateStage = UpdateStage.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateWorkflowResponse:
    run_id: str
    outcome: UpdateOutcome | None = None  # None: accepted, still running
    stage: UpdateStage = UpdateStage.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWorkflowUpdateRequest:
    """Wait for the outcome of an update sent earlier (Temporal's PollWorkflowExecutionUpdate)."""

    execution: WorkflowExecution
    update_id: str
    wait_s: float = 30.0  # a long poll: answered with no outcome when it passes


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWorkflowUpdateResponse:
    run_id: str
    outcome: UpdateOutcome | None = None  # None: still running when ``wait_s`` passed


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordActivityHeartbeatRequest:
    task_token: bytes
    details: Payloads | None = None  # None: keep the last details
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordActivityHeartbeatResponse:
    cancel_requested: bool = False  # the workflow asked to cancel this activity


@dataclass(frozen=True, slots=True, kw_only=True)
class RespondActivityTaskCanceledRequest:
    task_token: bytes
    details: Payloads = field(default_factory=list)
    identity: str = ""
