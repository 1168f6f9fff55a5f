"""History events (Temporal's history.v1): event types, attributes, ``HistoryEvent``.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Union, get_args

from shoal.wire.codec import tagged
from shoal.wire.children import (
    StartChildWorkflowExecutionInitiatedAttributes,
    StartChildWorkflowExecutionFailedAttributes,
    ChildWorkflowExecutionStartedAttributes,
    ChildWorkflowExecutionCompletedAttributes,
    ChildWorkflowExecutionFailedAttributes,
    ChildWorkflowExecutionCanceledAttributes,
    ChildWorkflowExecutionTimedOutAttributes,
    ChildWorkflowExecutionTerminatedAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedAttributes,
    RequestCancelExternalWorkflowExecutionFailedAttributes,
    ExternalWorkflowExecutionCancelRequestedAttributes,
    SignalExternalWorkflowExecutionInitiatedAttributes,
    SignalExternalWorkflowExecutionFailedAttributes,
    ExternalWorkflowExecutionSignaledAttributes,
)
from shoal.wire.values import (
    EventType,
    Failure,
    Payloads,
    RetryPolicy,
    RetryState,
    TimeoutType,
)

# --- history events (Temporal's history.v1) --------------------------------------------


class WorkflowTaskFailedCause(IntEnum):
    """The ``WorkflowTaskFailedCause`` values shoal produces (Temporal's names; only some of
    the numbers match Temporal's)."""

    UNHANDLED_COMMAND = 1
    BAD_SCHEDULE_ACTIVITY_ATTRIBUTES = 2
    BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES = 3
    BAD_START_TIMER_ATTRIBUTES = 4
    BAD_CANCEL_TIMER_ATTRIBUTES = 5
    BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES = 6
    BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES = 7
    BAD_RECORD_MARKER_ATTRIBUTES = 8
    BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES = 10
    BAD_CONTINUE_AS_NEW_ATTRIBUTES = 11
    BAD_START_CHILD_EXECUTION_ATTRIBUTES = 12
    BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES = 13
    BAD_SEARCH_ATTRIBUTES = 14
    BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES = 15
    BAD_UPDATE_ATTRIBUTES = 16
    # Not Temporal's number (25, which BAD_BINARY took here): several of these differ from
    # Temporal's and cannot be renumbered now that histories store them.
    BAD_MODIFY_WORKFLOW_PROPERTIES_ATTRIBUTES = 17
    START_TIMER_DUPLICATE_ID = 9
    WORKFLOW_WORKER_UNHANDLED_FAILURE = 22
    NON_DETERMINISTIC_ERROR = 24
    BAD_BINARY = 25
    RESET_STICKY_TASK_QUEUE = 26
    SCHEDULE_ACTIVITY_DUPLICATE_ID = 27
    PENDING_ACTIVITIES_LIMIT_EXCEEDED = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionStartedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_STARTED
    workflow_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float = 10.0
    attempt: int = 1
    first_execution_run_id: str = ""
    continued_execution_run_id: str | None = None
    original_execution_run_id: str = ""
    identity: str = ""
    request_id: str = ""
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)
    workflow_execution_expiration_time: float | None = None
    parent_workflow_id: str | None = None
    parent_run_id: str | None = None
    parent_initiated_event_id: int | None = None
    # The top of the parent chain (Temporal's root_workflow_execution); the run itself when
    # it has no parent; None when unknown.
    root_workflow_id: str | None = None
    root_run_id: str | None = None
    last_completion_result: Payloads | None = None
    continued_failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionCompletedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_COMPLETED
    result: Payloads = field(default_factory=list)
    workflow_task_completed_event_id: int = 0
    new_execution_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_FAILED
    failure: Failure
    retry_state: RetryState = RetryState.RETRY_POLICY_NOT_SET
    workflow_task_completed_event_id: int = 0
    new_execution_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionTimedOutAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_TIMED_OUT
    retry_state: RetryState = RetryState.TIMEOUT
    new_execution_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskScheduledAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_SCHEDULED
    task_queue: str
    start_to_close_timeout_s: float
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskStartedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_STARTED
    scheduled_event_id: int
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskCompletedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_COMPLETED
    scheduled_event_id: int
    started_event_id: int
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskTimedOutAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_TIMED_OUT
    scheduled_event_id: int
    started_event_id: int
    timeout_type: TimeoutType = TimeoutType.START_TO_CLOSE


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskFailedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_FAILED
    scheduled_event_id: int
    started_event_id: int
    cause: WorkflowTaskFailedCause = WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE
    failure: Failure | None = None
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskScheduledAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_SCHEDULED
    activity_id: str
    activity_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    schedule_to_close_timeout_s: float | None = None
    schedule_to_start_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    workflow_task_completed_event_id: int = 0
    retry_policy: RetryPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskStartedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_STARTED
    scheduled_event_id: int
    identity: str = ""
    request_id: str = ""
    attempt: int = 1
    last_failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskCompletedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_COMPLETED
    result: Payloads = field(default_factory=list)
    scheduled_event_id: int
    started_event_id: int
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskFailedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_FAILED
    failure: Failure
    scheduled_event_id: int
    started_event_id: int
    identity: str = ""
    retry_state: RetryState = RetryState.RETRY_POLICY_NOT_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskTimedOutAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_TIMED_OUT
    failure: Failure  # kind TIMEOUT, cause = last attempt's failure if any
    scheduled_event_id: int
    started_event_id: int
    retry_state: RetryState = RetryState.TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerStartedAttributes:
    KIND: ClassVar[int] = EventType.TIMER_STARTED
    timer_id: str
    start_to_fire_timeout_s: float
    workflow_task_completed_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFiredAttributes:
    KIND: ClassVar[int] = EventType.TIMER_FIRED
    timer_id: str
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerCanceledAttributes:
    KIND: ClassVar[int] = EventType.TIMER_CANCELED
    timer_id: str
    started_event_id: int
    workflow_task_completed_event_id: int = 0
    identity: str = ""


# --- history engine additions (node/history) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionTerminatedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_TERMINATED
    reason: str = ""
    details: Payloads = field(default_factory=list)
    identity: str = ""


# --- workflow interactions (issue 4: signals, cancellation, continue-as-new, markers) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionSignaledAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_SIGNALED
    signal_name: str
    input: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionCancelRequestedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED
    cause: str = ""  # the reason the requester gave
    identity: str = ""
    external_workflow_id: str | None = None  # set when a parent cancels its child


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionCanceledAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_CANCELED
    workflow_task_completed_event_id: int = 0
    details: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskCancelRequestedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_CANCEL_REQUESTED
    scheduled_event_id: int
    workflow_task_completed_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskCanceledAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_CANCELED
    details: Payloads = field(default_factory=list)
    latest_cancel_requested_event_id: int
    scheduled_event_id: int
    started_event_id: int  # 0: cancelled before an attempt started
    identity: str = ""


# --- updates (issue 4) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRequest:
    """An update as the client sent it; a workflow task carries it to the worker."""

    update_id: str
    name: str
    input: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateOutcome:
    """How an update ended: ``result``, or ``failure`` (rejected by the validator, or the
    handler raised)."""

    result: Payloads | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionUpdateAcceptedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    accepted_request: UpdateRequest  # replay re-runs the handler from this


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionUpdateCompletedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED
    update_id: str
    accepted_event_id: int
    outcome: UpdateOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertWorkflowSearchAttributesAttributes:
    KIND: ClassVar[int] = EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    workflow_task_completed_event_id: int
    search_attributes: dict[str, bytes] = field(default_factory=dict)  # b"": remove the key


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPropertiesModifiedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_PROPERTIES_MODIFIED
    workflow_task_completed_event_id: int
    upserted_memo: dict[str, bytes] = field(default_factory=dict)  # b"": remove the key


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkerRecordedAttributes:
    KIND: ClassVar[int] = EventType.MARKER_RECORDED
    marker_name: str
    details: dict[str, Payloads] = field(default_factory=dict)
    workflow_task_completed_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionContinuedAsNewAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    new_execution_run_id: str
    workflow_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    workflow_task_completed_event_id: int = 0

EventAttributes = Union[
    WorkflowExecutionStartedAttributes,
    WorkflowExecutionCompletedAttributes,
    WorkflowExecutionFailedAttributes,
    WorkflowExecutionTimedOutAttributes,
    WorkflowTaskScheduledAttributes,
    WorkflowTaskStartedAttributes,
    WorkflowTaskCompletedAttributes,
    WorkflowTaskTimedOutAttributes,
    WorkflowTaskFailedAttributes,
    ActivityTaskScheduledAttributes,
    ActivityTaskStartedAttributes,
    ActivityTaskCompletedAttributes,
    ActivityTaskFailedAttributes,
    ActivityTaskTimedOutAttributes,
    TimerStartedAttributes,
    TimerFiredAttributes,
    TimerCanceledAttributes,
    WorkflowExecutionTerminatedAttributes,
    WorkflowExecutionSignaledAttributes,
    WorkflowExecutionCancelRequestedAttributes,
    WorkflowExecutionCanceledAttributes,
    MarkerRecordedAttributes,
    WorkflowExecutionContinuedAsNewAttributes,
    ActivityTaskCancelRequestedAttributes,
    ActivityTaskCanceledAttributes,
    StartChildWorkflowExecutionInitiatedAttributes,
    StartChildWorkflowExecutionFailedAttributes,
    ChildWorkflowExecutionStartedAttributes,
    ChildWorkflowExecutionCompletedAttributes,
    ChildWorkflowExecutionFailedAttributes,
    ChildWorkflowExecutionCanceledAttributes,
    ChildWorkflowExecutionTimedOutAttributes,
    ChildWorkflowExecutionTerminatedAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedAttributes,
    RequestCancelExternalWorkflowExecutionFailedAttributes,
    ExternalWorkflowExecutionCancelRequestedAttributes,
    SignalExternalWorkflowExecutionInitiatedAttributes,
    SignalExternalWorkflowExecutionFailedAttributes,
    ExternalWorkflowExecutionSignaledAttributes,
    WorkflowExecutionUpdateAcceptedAttributes,
    WorkflowExecutionUpdateCompletedAttributes,
    UpsertWorkflowSearchAttributesAttributes,
    WorkflowPropertiesModifiedAttributes,
]

for _cls in get_args(EventAttributes):
    tagged(_cls)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEvent:
    """One history event. ``event_time`` is seconds since the epoch (UTC)."""

    event_id: int
    event_time: float
    event_type: EventType
    attributes: EventAttributes

    def __post_init__(self) -> None:
        if int(self.attributes.KIND) != int(self.event_type):
            raise ValueError(
                f"event_type {self.event_type!r} does not match {type(self.attributes).__name__}"
            )
