"""Commands a workflow produces and the history events that record them.

Owns: which event types record commands, whether a produced command matches a recorded
event (the non-determinism check of replay), and human-readable descriptions of both for
the error message. Must not: run workflow code or hold state.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal import wire
from shoal.sdk.exceptions import TemporalError

ET = wire.EventType

# Events written from a workflow task's commands, right after its WorkflowTaskCompleted.
COMMAND_EVENT_TYPES = frozenset({
    ET.ACTIVITY_TASK_SCHEDULED,
    ET.TIMER_STARTED,
    ET.TIMER_CANCELED,
    ET.WORKFLOW_EXECUTION_COMPLETED,
    ET.WORKFLOW_EXECUTION_FAILED,
    ET.ACTIVITY_TASK_CANCEL_REQUESTED,
    ET.MARKER_RECORDED,
    ET.WORKFLOW_EXECUTION_CANCELED,
    ET.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    ET.START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    ET.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    ET.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    ET.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    ET.WORKFLOW_PROPERTIES_MODIFIED,
    ET.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    ET.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
})

TERMINAL_COMMANDS = (wire.CompleteWorkflowExecutionCommand, wire.FailWorkflowExecutionCommand,
                     wire.CancelWorkflowExecutionCommand,
                     wire.ContinueAsNewWorkflowExecutionCommand)


class NondeterminismError(TemporalError):
    """Replaying history produced different commands than the ones recorded."""


@dataclass(slots=True)
class ProducedCommand:
    """A command and the sequence number it was created under (0: none, e.g. complete)."""

    command: wire.Command
    seq: int


def matches(command: wire.Command, event: wire.HistoryEvent) -> bool:
    """Whether ``event`` is the record of ``command`` (type and identity, not every field).

    Only identity is compared (as Temporal does): changing an activity's timeouts or
    arguments between deployments is allowed, changing which activity runs is not.
    """
    a = event.attributes
    if isinstance(command, wire.ScheduleActivityTaskCommand):
        return (isinstance(a, wire.ActivityTaskScheduledAttributes)
                and a.activity_id == command.activity_id
                and a.activity_type == command.activity_type)
    if isinstance(command, wire.StartTimerCommand):
        return isinstance(a, wire.TimerStartedAttributes) and a.timer_id == command.timer_id
    if isinstance(command, wire.CancelTimerCommand):
        return isinstance(a, wire.TimerCanceledAttributes) and a.timer_id == command.timer_id
    if isinstance(command, wire.CompleteWorkflowExecutionCommand):
        return isinstance(a, wire.WorkflowExecutionCompletedAttributes)
    if isinstance(command, wire.FailWorkflowExecutionCommand):
        return isinstance(a, wire.WorkflowExecutionFailedAttributes)
    if isinstance(command, wire.RequestCancelActivityTaskCommand):
        return (isinstance(a, wire.ActivityTaskCancelRequestedAttributes)
                and a.scheduled_event_id == command.scheduled_event_id)
    if isinstance(command, wire.StartChildWorkflowExecutionCommand):
        return (isinstance(a, wire.StartChildWorkflowExecutionInitiatedAttributes)
                and a.workflow_id == command.workflow_id and a.workflow_type == command.workflow_type)
    if isinstance(command, wire.SignalExternalWorkflowExecutionCommand):
        return (isinstance(a, wire.SignalExternalWorkflowExecutionInitiatedAttributes)
                and a.workflow_execution.workflow_id == command.workflow_id
                and a.signal_name == command.signal_name)
    if isinstance(command, wire.RequestCancelExternalWorkflowExecutionCommand):
        return (isinstance(a, wire.RequestCancelExternalWorkflowExecutionInitiatedAttributes)
                and a.workflow_execution.workflow_id == command.workflow_id)
    if isinstance(command, wire.AcceptUpdateCommand):
        return (isinstance(a, wire.WorkflowExecutionUpdateAcceptedAttributes)
                and a.accepted_request.update_id == command.request.update_id)
    if isinstance(command, wire.CompleteUpdateCommand):
        return (isinstance(a, wire.WorkflowExecutionUpdateCompletedAttributes)
                and a.update_id == command.update_id)
    if isinstance(command, wire.UpsertWorkflowSearchAttributesCommand):
        return isinstance(a, wire.UpsertWorkflowSearchAttributesAttributes)
    if isinstance(command, wire.ModifyWorkflowPropertiesCommand):
        return isinstance(a, wire.WorkflowPropertiesModifiedAttributes)
    if isinstance(command, wire.CancelWorkflowExecutionCommand):
        return isinstance(a, wire.WorkflowExecutionCanceledAttributes)
    if isinstance(command, wire.ContinueAsNewWorkflowExecutionCommand):
        return isinstance(a, wire.WorkflowExecutionContinuedAsNewAttributes)
    if isinstance(command, wire.RecordMarkerCommand):
        return (isinstance(a, wire.MarkerRecordedAttributes)
                and a.marker_name == command.marker_name
                and a.details.get("patch_id") == command.details.get("patch_id"))
    return False


def describe_command(command: wire.Command) -> str:
    """A short description such as ``ScheduleActivityTask(activity_id='1', activity_type='x')``."""
    if isinstance(command, wire.ScheduleActivityTaskCommand):
        return (f"ScheduleActivityTask(activity_id={command.activity_id!r}, "
                f"activity_type={command.activity_type!r})")
    if isinstance(command, wire.StartTimerCommand):
        return (f"StartTimer(timer_id={command.timer_id!r}, "
                f"seconds={command.start_to_fire_timeout_s:g})")
    if isinstance(command, wire.CancelTimerCommand):
        return f"CancelTimer(timer_id={command.timer_id!r})"
    if isinstance(command, wire.CompleteWorkflowExecutionCommand):
        return "CompleteWorkflowExecution"
    if isinstance(command, wire.FailWorkflowExecutionCommand):
        return "FailWorkflowExecution"
    if isinstance(command, wire.RecordMarkerCommand):
        return f"RecordMarker(marker_name={command.marker_name!r})"
    return type(command).__name__.removesuffix("Command")


def describe_event(event: wire.HistoryEvent) -> str:
    """A short description of an event, naming the command-identity fields it carries."""
    a = event.attributes
    name = event.event_type.name
    if isinstance(a, wire.ActivityTaskScheduledAttributes):
        detail = f"activity_id={a.activity_id!r}, activity_type={a.activity_type!r}"
    elif isinstance(a, (wire.TimerStartedAttributes, wire.TimerCanceledAttributes)):
        detail = f"timer_id={a.timer_id!r}"
    elif isinstance(a, wire.MarkerRecordedAttributes):
        detail = f"marker_name={a.marker_name!r}"
    else:
        detail = ""
    return f"{name}({detail}) at event {event.event_id}"
