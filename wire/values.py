"""Value types shared by history, commands and the API: statuses, policies, failures.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

# --- shared value types ----------------------------------------------------------------

Payloads = list[bytes]  # one opaque payload per argument or result value


class WorkflowExecutionStatus(IntEnum):
    """Numbers as Temporal's ``enums.v1.WorkflowExecutionStatus``."""

    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7


class QueryRejectCondition(IntEnum):
    """Numbers as Temporal's ``enums.v1.QueryRejectCondition``: when a query of a closed run
    is refused rather than answered."""

    NONE = 1
    NOT_OPEN = 2
    NOT_COMPLETED_CLEANLY = 3


class ParentClosePolicy(IntEnum):
    """Numbers as Temporal's: what happens to a running child when its parent closes."""

    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


class IdReusePolicy(IntEnum):
    """Numbers as Temporal's ``WorkflowIdReusePolicy``."""

    ALLOW_DUPLICATE = 1
    ALLOW_DUPLICATE_FAILED_ONLY = 2
    REJECT_DUPLICATE = 3
    TERMINATE_IF_RUNNING = 4


class TimeoutType(IntEnum):
    """Numbers as Temporal's ``TimeoutType``."""

    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


class RetryState(IntEnum):
    """Numbers as Temporal's ``RetryState``: why retries stopped."""

    IN_PROGRESS = 1
    NON_RETRYABLE_FAILURE = 2
    TIMEOUT = 3
    MAXIMUM_ATTEMPTS_REACHED = 4
    RETRY_POLICY_NOT_SET = 5
    INTERNAL_SERVER_ERROR = 6
    CANCEL_REQUESTED = 7


class FailureKind(IntEnum):
    """Which of Temporal's ``Failure.failure_info`` variants a failure carries."""

    APPLICATION = 1
    TIMEOUT = 2
    CANCELED = 3
    TERMINATED = 4
    SERVER = 5
    ACTIVITY = 6
    CHILD_WORKFLOW = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Server-applied retry policy; times in seconds. ``maximum_attempts`` 0 = unlimited."""

    initial_interval_s: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_s: float | None = None  # None: 100 x initial interval, as Temporal
    maximum_attempts: int = 0
    non_retryable_error_types: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A failure with its cause chain, as Temporal's ``failure.v1.Failure``.

    ``kind`` selects which optional fields are meaningful: APPLICATION uses ``type``,
    ``non_retryable`` and ``details``; TIMEOUT uses ``timeout_type`` and ``details`` (last
    heartbeat details); ACTIVITY uses the ``activity_*`` fields, ``scheduled_event_id``,
    ``started_event_id`` and ``retry_state``.
    """

    message: str
    kind: FailureKind = FailureKind.APPLICATION
    source: str = "shoal"
    stack_trace: str = ""
    type: str = ""
    non_retryable: bool = False
    details: Payloads = field(default_factory=list)
    timeout_type: TimeoutType | None = None
    retry_state: RetryState | None = None
    activity_type: str | None = None
    activity_id: str | None = None
    scheduled_event_id: int | None = None
    started_event_id: int | None = None
    identity: str | None = None
    cause: Failure | None = None


class EventType(IntEnum):
    """Numbers and names as Temporal's ``enums.v1.EventType`` (without the prefix)."""

    WORKFLOW_EXECUTION_STARTED = 1
    WORKFLOW_EXECUTION_COMPLETED = 2
    WORKFLOW_EXECUTION_FAILED = 3
    WORKFLOW_EXECUTION_TIMED_OUT = 4
    WORKFLOW_TASK_SCHEDULED = 5
    WORKFLOW_TASK_STARTED = 6
    WORKFLOW_TASK_COMPLETED = 7
    WORKFLOW_TASK_TIMED_OUT = 8
    WORKFLOW_TASK_FAILED = 9
    ACTIVITY_TASK_SCHEDULED = 10
    ACTIVITY_TASK_STARTED = 11
    ACTIVITY_TASK_COMPLETED = 12
    ACTIVITY_TASK_FAILED = 13
    ACTIVITY_TASK_TIMED_OUT = 14
    ACTIVITY_TASK_CANCEL_REQUESTED = 15
    ACTIVITY_TASK_CANCELED = 16
    TIMER_STARTED = 17
    TIMER_FIRED = 18
    TIMER_CANCELED = 19
    WORKFLOW_EXECUTION_CANCEL_REQUESTED = 20
    WORKFLOW_EXECUTION_CANCELED = 21
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = 22
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = 23
    EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED = 24
    MARKER_RECORDED = 25
    WORKFLOW_EXECUTION_SIGNALED = 26
    WORKFLOW_EXECUTION_TERMINATED = 27
    WORKFLOW_EXECUTION_CONTINUED_AS_NEW = 28
    START_CHILD_WORKFLOW_EXECUTION_INITIATED = 29
    START_CHILD_WORKFLOW_EXECUTION_FAILED = 30
    CHILD_WORKFLOW_EXECUTION_STARTED = 31
    CHILD_WORKFLOW_EXECUTION_COMPLETED = 32
    CHILD_WORKFLOW_EXECUTION_FAILED = 33
    CHILD_WORKFLOW_EXECUTION_CANCELED = 34
    CHILD_WORKFLOW_EXECUTION_TIMED_OUT = 35
    CHILD_WORKFLOW_EXECUTION_TERMINATED = 36
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = 37
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = 38
    EXTERNAL_WORKFLOW_EXECUTION_SIGNALED = 39
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = 40
    WORKFLOW_EXECUTION_UPDATE_ACCEPTED = 41
    WORKFLOW_EXECUTION_UPDATE_REJECTED = 42
    WORKFLOW_EXECUTION_UPDATE_COMPLETED = 43
    WORKFLOW_PROPERTIES_MODIFIED = 46


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecution:
    workflow_id: str
    run_id: str = ""  # empty: the current run
