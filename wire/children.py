"""History events of child and external workflows (Temporal's history.v1).

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from shoal.wire.values import (
    EventType,
    Failure,
    IdReusePolicy,
    ParentClosePolicy,
    Payloads,
    RetryPolicy,
    RetryState,
    WorkflowExecution,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildWorkflowExecutionInitiatedAttributes:
    KIND: ClassVar[int] = EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED
    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE
    workflow_task_completed_event_id: int = 0
    workflow_id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED
    namespace: str
    workflow_id: str
    workflow_type: str
    cause: str  # WORKFLOW_ALREADY_EXISTS
    initiated_event_id: int
    workflow_task_completed_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionStartedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_STARTED
    namespace: str
    initiated_event_id: int
    workflow_execution: WorkflowExecution
    workflow_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionCompletedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED
    result: Payloads = field(default_factory=list)
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_FAILED
    failure: Failure
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int
    retry_state: RetryState = RetryState.RETRY_POLICY_NOT_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionCanceledAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_CANCELED
    details: Payloads = field(default_factory=list)
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionTimedOutAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int
    retry_state: RetryState = RetryState.TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionTerminatedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelExternalWorkflowExecutionInitiatedAttributes:
    KIND: ClassVar[int] = EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    workflow_task_completed_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution
    child_workflow_only: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelExternalWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    cause: str  # EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
    workflow_task_completed_event_id: int = 0
    namespace: str
    workflow_execution: WorkflowExecution
    initiated_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalWorkflowExecutionCancelRequestedAttributes:
    KIND: ClassVar[int] = EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    initiated_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalExternalWorkflowExecutionInitiatedAttributes:
    KIND: ClassVar[int] = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    workflow_task_completed_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution
    signal_name: str
    input: Payloads = field(default_factory=list)
    child_workflow_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalExternalWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    cause: str
    workflow_task_completed_event_id: int = 0
    namespace: str
    workflow_execution: WorkflowExecution
    initiated_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalWorkflowExecutionSignaledAttributes:
    KIND: ClassVar[int] = EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
    initiated_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution
