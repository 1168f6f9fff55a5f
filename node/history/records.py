"""The workflow model the history engine owns: an execution's mutable state and its outbox
tasks.

Owns: the plain-data shape of what ``store/tables.py`` keeps for each execution (its
mutable state, the transfer and timer tasks of the transactional outbox). These are data
only; the engine (this package) owns the logic that changes them. Encoded with ``wire``'s
codec; ``store/tables.py`` stores them without knowing their types beyond a few fields.
Must not: do I/O or hold behaviour beyond small helpers. Adding a field with a default is
compatible; renaming one is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from shoal import wire


class TransferKind(IntEnum):
    """What a transfer (dispatch) task hands to matching."""

    WORKFLOW_TASK = 1
    ACTIVITY_TASK = 2
    # Cross-workflow effects, carried out by the node's transfer processor (the run's
    # state holds their details, keyed by ``scheduled_event_id`` = the initiating event):
    START_CHILD = 3  # start the child named by a StartChildWorkflowExecutionInitiated
    CANCEL_EXTERNAL = 4  # request cancel of the workflow a RequestCancelExternal... names
    SIGNAL_EXTERNAL = 5  # signal the workflow a SignalExternal... names
    CHILD_CLOSED = 6  # tell this closed child's parent how it ended
    PARENT_CLOSE_POLICY = 7  # terminate or cancel a running child of this closed parent


MATCHED_TRANSFER_KINDS = frozenset({TransferKind.WORKFLOW_TASK, TransferKind.ACTIVITY_TASK})


class TimerKind(IntEnum):
    """What a durable timer task does when it fires."""

    USER_TIMER = 1  # the workflow's own timer (TimerStarted -> TimerFired)
    ACTIVITY_TIMEOUT = 2  # one of the activity timeouts; ``timeout_type`` says which
    WORKFLOW_TASK_TIMEOUT = 3  # start-to-close (or schedule-to-start on a sticky queue)
    WORKFLOW_RUN_TIMEOUT = 4
    WORKFLOW_EXECUTION_TIMEOUT = 5
    ACTIVITY_RETRY = 6  # backoff over: dispatch the next attempt
    WORKFLOW_TASK_RETRY = 7  # backoff over after repeated workflow task failures


@dataclass(slots=True, kw_only=True)
class TransferTask:
    """Outbox entry: dispatch a workflow or activity task to its task queue.

    ``task_id`` is assigned by the shard when the entry is built (unique and increasing per
    shard); matching drops duplicates by it. The task is deleted in the same log entry that
    records the task as started, so after a restart every row left is a scheduled-but-not-
    started task to re-dispatch (DESIGN §3.4).
    """

    task_id: int = 0
    kind: TransferKind
    namespace: str
    workflow_id: str
    run_id: str
    task_queue: str
    scheduled_event_id: int
    attempt: int = 1


@dataclass(slots=True, kw_only=True)
class TimerTask:
    """Outbox entry: do something at ``fire_time`` (epoch seconds).

    Fencing fields (``event_id``, ``attempt``, ``timer_id``) let the engine recognise a
    stale timer (the activity already completed, the attempt moved on) and ignore it.
    """

    task_id: int = 0
    fire_time: float
    kind: TimerKind
    namespace: str
    workflow_id: str
    run_id: str
    event_id: int = 0  # scheduled event id of the activity / workflow task; timer's started id
    attempt: int = 1
    timer_id: str | None = None
    timeout_type: wire.TimeoutType | None = None


@dataclass(slots=True, kw_only=True)
class ActivityInfo:
    """A pending activity: scheduled, started, or backing off before its next attempt."""

    scheduled_event_id: int
    activity_id: str
    activity_type: str
    task_queue: str
    input: wire.Payloads = field(default_factory=list)
    schedule_to_close_timeout_s: float | None = None
    schedule_to_start_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    retry_policy: wire.RetryPolicy | None = None
    attempt: int = 1
    scheduled_time: float = 0.0  # of the first attempt
    current_attempt_scheduled_time: float = 0.0
    started_event_id: int = 0  # 0: not started (events are buffered until the attempt ends)
    started_time: float | None = None
    started_identity: str = ""
    started_request_id: str = ""
    last_failure: wire.Failure | None = None
    heartbeat_details: wire.Payloads | None = None
    last_heartbeat_time: float | None = None
    backing_off: bool = False
    cancel_requested_event_id: int = 0  # ActivityTaskCancelRequested; 0: not requested


@dataclass(slots=True, kw_only=True)
class ChildInfo:
    """A child workflow this run initiated and that has not closed (as the parent sees it)."""

    initiated_event_id: int
    namespace: str
    workflow_id: str
    workflow_type: str
    parent_close_policy: wire.ParentClosePolicy
    started_event_id: int = 0  # ChildWorkflowExecutionStarted; 0: not started yet
    run_id: str = ""  # the child's first run, once started


@dataclass(slots=True, kw_only=True)
class ExternalRequest:
    """A cancel request or signal to another workflow, waiting to be delivered."""

    initiated_event_id: int
    namespace: str
    workflow_id: str
    run_id: str = ""
    child_workflow_only: bool = False
    signal_name: str = ""  # empty: a cancel request
    input: wire.Payloads = field(default_factory=list)
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class TimerInfo:
    timer_id: str
    started_event_id: int
    fire_time: float


@dataclass(slots=True, kw_only=True)
class WorkflowTaskInfo:
    scheduled_event_id: int
    attempt: int = 1
    task_queue: str
    timeout_s: float
    scheduled_time: float
    started_event_id: int = 0  # 0: scheduled, not started
    started_time: float | None = None
    started_identity: str = ""
    request_id: str = ""
    # A retry of a failing task (Temporal's transient workflow task): its Scheduled and
    # Started events are not in history yet; ``scheduled_event_id`` is the id they will
    # take, and they are written only if the attempt completes, so a task that keeps
    # failing does not grow history.
    transient: bool = False
    # Scheduled only to deliver updates (Temporal's speculative task): transient, and if it
    # completes with nothing but rejections it is dropped without a trace in history.
    speculative: bool = False
    sticky: bool = False  # dispatched to the worker's sticky queue (task_queue is that queue)


@dataclass(slots=True, kw_only=True)
class ExecutionState:
    """Mutable state of one workflow run (Temporal's ``MutableState``)."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: wire.WorkflowExecutionStatus = wire.WorkflowExecutionStatus.RUNNING
    start_time: float
    close_time: float | None = None
    start_request_id: str = ""
    first_execution_run_id: str = ""
    workflow_task_timeout_s: float = 10.0
    run_expiration_time: float | None = None
    execution_expiration_time: float | None = None
    next_event_id: int = 1
    last_started_event_id: int = 0  # previous_started_event_id for the next workflow task
    # Bytes of this run's stored history batches (Temporal's history size): the shard adds
    # each batch's encoded size when it writes it, as Temporal sums its event blobs.
    history_size_bytes: int = 0
    workflow_task: WorkflowTaskInfo | None = None
    activities: dict[int, ActivityInfo] = field(default_factory=dict)
    timers: dict[str, TimerInfo] = field(default_factory=dict)
    activity_ids: dict[str, int] = field(default_factory=dict)  # activity_id -> scheduled id
    # Events that arrived while a workflow task was started; flushed after it completes,
    # so the worker's view of history is WTStarted immediately followed by WTCompleted.
    buffered_events: list[wire.HistoryEvent] = field(default_factory=list)
    result: wire.Payloads | None = None
    failure: wire.Failure | None = None
    new_execution_run_id: str | None = None
    last_workflow_task_failure: wire.Failure | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)
    # --- workflow interactions (issue 4) ---
    # Request ids of recorded signals, so a retried signal is recorded once (bounded: the
    # oldest are forgotten past SIGNAL_REQUEST_IDS_MAX, as a client retries within seconds).
    signal_request_ids: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    cancel_request_id: str = ""
    # --- child and external workflows (issue 4) ---
    children: dict[int, ChildInfo] = field(default_factory=dict)  # by initiated event id
    external_requests: dict[int, ExternalRequest] = field(default_factory=dict)
    # Kept when a child closes so its parent can be told (a continued run inherits them).
    parent: wire.WorkflowExecution | None = None
    parent_namespace: str = ""
    parent_initiated_event_id: int = 0
    # The top of the parent chain (Temporal's root execution): this run itself when it has
    # no parent, else inherited from the parent. None: unknown (a state written before
    # roots were kept, or a child started by a peer that did not send its root).
    root: wire.WorkflowExecution | None = None
    # Sticky execution: the queue of the worker that caches this run ('' = none).
    sticky_task_queue: str = ""
    sticky_schedule_to_start_timeout_s: float = 5.0
    # --- updates (issue 4) ---
    accepted_updates: dict[str, int] = field(default_factory=dict)  # id -> Accepted event id
    # Outcomes of completed updates, so a retried request gets the same answer (bounded: the
    # oldest are forgotten past UPDATES_COMPLETED_MAX).
    completed_updates: dict[str, wire.UpdateOutcome] = field(default_factory=dict)


def root_of(st: ExecutionState) -> wire.WorkflowExecution | None:
    """The top of ``st``'s parent chain: its recorded root, else itself if it has no parent
    (Temporal: a run without a parent is its own root), else unknown (None)."""
    if st.root is not None:
        return st.root
    if st.parent is None:
        return wire.WorkflowExecution(workflow_id=st.workflow_id, run_id=st.run_id)
    return None


SIGNAL_REQUEST_IDS_MAX = 1000
UPDATES_COMPLETED_MAX = 1000


@dataclass(slots=True, kw_only=True)
class CurrentRun:
    """The run a workflow id currently names; ID-reuse and start dedupe read it."""

    run_id: str
    status: wire.WorkflowExecutionStatus
    start_request_id: str = ""
