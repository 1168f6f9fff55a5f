"""Commands a worker returns with a workflow task (Temporal's command.v1).

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Union, get_args

from shoal.wire.codec import tagged
from shoal.wire.history import UpdateOutcome, UpdateRequest
from shoal.wire.values import Failure, IdReusePolicy, ParentClosePolicy, Payloads, RetryPolicy

# --- commands (Temporal's command.v1), worker -> server --------------------------------


class CommandType(IntEnum):
    """Numbers as Temporal's ``enums.v1.CommandType``. Tag numbers are 100 + this."""

    SCHEDULE_ACTIVITY_TASK = 1
    REQUEST_CANCEL_ACTIVITY_TASK = 2
    START_TIMER = 3
    COMPLETE_WORKFLOW_EXECUTION = 4
    FAIL_WORKFLOW_EXECUTION = 5
    CANCEL_TIMER = 6
    CANCEL_WORKFLOW_EXECUTION = 7
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION = 8
    RECORD_MARKER = 9
    CONTINUE_AS_NEW_WORKFLOW_EXECUTION = 10
    START_CHILD_WORKFLOW_EXECUTION = 11
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION = 12
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = 13
    MODIFY_WORKFLOW_PROPERTIES = 16
    # Temporal carries update answers as protocol messages beside the commands; shoal makes
    # them commands (numbers past Temporal's range).
    ACCEPT_UPDATE = 50
    REJECT_UPDATE = 51
    COMPLETE_UPDATE = 52


_COMMAND_TAG = 100  # keeps command tags apart from event-attribute tags in one registry


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleActivityTaskCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.SCHEDULE_ACTIVITY_TASK
    activity_id: str
    activity_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    schedule_to_close_timeout_s: float | None = None
    schedule_to_start_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    retry_policy: RetryPolicy | None = None
    # The completing worker can run this activity now (Temporal's eager activity execution):
    # the node may start it in the same entry and return it in the completion's answer.
    request_eager_execution: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTimerCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.START_TIMER
    timer_id: str
    start_to_fire_timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.START_CHILD_WORKFLOW_EXECUTION
    workflow_id: str
    workflow_type: str
    task_queue: str = ""  # empty: the parent's
    input: Payloads = field(default_factory=list)
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE
    workflow_id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelExternalWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION
    workflow_id: str
    run_id: str = ""
    child_workflow_only: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalExternalWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION
    workflow_id: str
    run_id: str = ""
    signal_name: str
    input: Payloads = field(default_factory=list)
    child_workflow_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertWorkflowSearchAttributesCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    search_attributes: dict[str, bytes]  # an empty payload removes the attribute


@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyWorkflowPropertiesCommand:
    """``workflow.upsert_memo``: memo fields to set (an empty payload removes one)."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.MODIFY_WORKFLOW_PROPERTIES
    upserted_memo: dict[str, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptUpdateCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.ACCEPT_UPDATE
    request: UpdateRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectUpdateCommand:
    """The validator refused the update: nothing is recorded; the caller gets ``failure``."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.REJECT_UPDATE
    update_id: str
    failure: Failure


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteUpdateCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.COMPLETE_UPDATE
    update_id: str
    outcome: UpdateOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelActivityTaskCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.REQUEST_CANCEL_ACTIVITY_TASK
    scheduled_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimerCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.CANCEL_TIMER
    timer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.COMPLETE_WORKFLOW_EXECUTION
    result: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.FAIL_WORKFLOW_EXECUTION
    failure: Failure


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelWorkflowExecutionCommand:
    """Close the run as canceled (the workflow accepted a cancel request)."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.CANCEL_WORKFLOW_EXECUTION
    details: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMarkerCommand:
    """Record a marker (``workflow.patched`` writes one named ``core_patch``)."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.RECORD_MARKER
    marker_name: str
    details: dict[str, Payloads] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinueAsNewWorkflowExecutionCommand:
    """Close the run and start a new run of the same workflow id with fresh history.

    Empty ``workflow_type``/``task_queue`` and None timeouts mean "as the current run".
    """

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.CONTINUE_AS_NEW_WORKFLOW_EXECUTION
    workflow_type: str = ""
    task_queue: str = ""
    input: Payloads = field(default_factory=list)
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    memo: dict[str, bytes] | None = None
    search_attributes: dict[str, bytes] | None = None
    retry_policy: RetryPolicy | None = None

Command = Union[
    ScheduleActivityTaskCommand,
    StartTimerCommand,
    CancelTimerCommand,
    CompleteWorkflowExecutionCommand,
    FailWorkflowExecutionCommand,
    CancelWorkflowExecutionCommand,
    RecordMarkerCommand,
    ContinueAsNewWorkflowExecutionCommand,
    RequestCancelActivityTaskCommand,
    StartChildWorkflowExecutionCommand,
    RequestCancelExternalWorkflowExecutionCommand,
    SignalExternalWorkflowExecutionCommand,
    AcceptUpdateCommand,
    RejectUpdateCommand,
    CompleteUpdateCommand,
    UpsertWorkflowSearchAttributesCommand,
    ModifyWorkflowPropertiesCommand,
]

for _cls in get_args(Command):
    tagged(_cls)
