"""Hand-built workflow histories for driving ``WorkflowInstance`` without a server.

``HistoryBuilder`` appends events with dense ids and a controllable clock, records a task's
commands as the events the server would write for them (keeping activity id -> scheduled
event id), and ``Driver`` plays the server's part of the loop: activate, record, add
outcomes, activate again — optionally against a fresh instance each time (full replay).
"""

from __future__ import annotations

from typing import Any, Optional

from shoal import wire
from shoal.sdk.converter import DataConverter
from shoal.sdk.workflow import WorkflowDefinition
from shoal.sdk.workflow_instance import Activation, WorkflowInstance

ET = wire.EventType
CONV = DataConverter.default


class HistoryBuilder:
    """Builds a history the way the server would record it.

    Args:
        workflow_type: The type name in WorkflowExecutionStarted.
        args: Workflow arguments (encoded with the default converter).
        start_time: Clock of the first event, seconds since the epoch.
    """

    def __init__(self, workflow_type: str, *args: Any, task_queue: str = "tq",
                 start_time: float = 1_700_000_000.0) -> None:
        self.events: list[wire.HistoryEvent] = []
        self.now = start_time
        self.task_queue = task_queue
        self.scheduled: dict[str, int] = {}  # activity_id -> ActivityTaskScheduled event id
        self.started: dict[str, int] = {}  # activity_id -> ActivityTaskStarted event id
        self.timers: dict[str, int] = {}  # timer_id -> TimerStarted event id
        self.add(wire.WorkflowExecutionStartedAttributes(
            workflow_type=workflow_type, task_queue=task_queue, input=CONV.to_payloads(args),
            first_execution_run_id="run-1"))
        self._task_scheduled = 0
        self._task_started = 0

    # --- basics ------------------------------------------------------------------------

    def add(self, attributes: Any) -> wire.HistoryEvent:
        """Append one event (type from the attributes' KIND) at the current clock."""
        event = wire.HistoryEvent(event_id=len(self.events) + 1, event_time=self.now,
                                  event_type=ET(int(attributes.KIND)), attributes=attributes)
        self.events.append(event)
        return event

    def advance(self, seconds: float) -> HistoryBuilder:
        """Move the clock forward."""
        self.now += seconds
        return self

    @property
    def last_id(self) -> int:
        return len(self.events)

    def since(self, event_id: int) -> list[wire.HistoryEvent]:
        """Events after ``event_id`` (what a cached worker receives)."""
        return self.events[event_id:]

    # --- workflow tasks ----------------------------------------------------------------

    def start_task(self, attempt: int = 1) -> HistoryBuilder:
        """WorkflowTaskScheduled + WorkflowTaskStarted."""
        self._task_scheduled = self.add(wire.WorkflowTaskScheduledAttributes(
            task_queue=self.task_queue, start_to_close_timeout_s=10.0, attempt=attempt)).event_id
        self._task_started = self.add(wire.WorkflowTaskStartedAttributes(
            scheduled_event_id=self._task_scheduled)).event_id
        return self

    def complete_task(self, commands: list[wire.Command]) -> HistoryBuilder:
        """WorkflowTaskCompleted, then the events recording ``commands`` in order."""
        completed = self.add(wire.WorkflowTaskCompletedAttributes(
            scheduled_event_id=self._task_scheduled, started_event_id=self._task_started)).event_id
        for command in commands:
            self._record(command, completed)
        return self

    def fail_task(self) -> HistoryBuilder:
        """WorkflowTaskFailed: the attempt's commands are not recorded."""
        self.add(wire.WorkflowTaskFailedAttributes(
            scheduled_event_id=self._task_scheduled, started_event_id=self._task_started))
        return self

    def time_out_task(self) -> HistoryBuilder:
        """WorkflowTaskTimedOut."""
        self.add(wire.WorkflowTaskTimedOutAttributes(
            scheduled_event_id=self._task_scheduled, started_event_id=self._task_started))
        return self

    def _record(self, command: wire.Command, completed: int) -> None:
        if isinstance(command, wire.ScheduleActivityTaskCommand):
            self.scheduled[command.activity_id] = self.add(wire.ActivityTaskScheduledAttributes(
                activity_id=command.activity_id, activity_type=command.activity_type,
                task_queue=command.task_queue, input=command.input,
                start_to_close_timeout_s=command.start_to_close_timeout_s,
                workflow_task_completed_event_id=completed)).event_id
        elif isinstance(command, wire.StartTimerCommand):
            self.timers[command.timer_id] = self.add(wire.TimerStartedAttributes(
                timer_id=command.timer_id, start_to_fire_timeout_s=command.start_to_fire_timeout_s,
                workflow_task_completed_event_id=completed)).event_id
        elif isinstance(command, wire.CancelTimerCommand):
            self.add(wire.TimerCanceledAttributes(
                timer_id=command.timer_id, started_event_id=self.timers[command.timer_id],
                workflow_task_completed_event_id=completed))
        elif isinstance(command, wire.RequestCancelActivityTaskCommand):
            self.add(wire.ActivityTaskCancelRequestedAttributes(
                scheduled_event_id=command.scheduled_event_id,
                workflow_task_completed_event_id=completed))
        elif isinstance(command, wire.CompleteWorkflowExecutionCommand):
            self.add(wire.WorkflowExecutionCompletedAttributes(
                result=command.result, workflow_task_completed_event_id=completed))
        elif isinstance(command, wire.FailWorkflowExecutionCommand):
            self.add(wire.WorkflowExecutionFailedAttributes(
                failure=command.failure, workflow_task_completed_event_id=completed))
        else:
            raise AssertionError(f"cannot record {command!r}")

    # --- external events ---------------------------------------------------------------

    def activity_started(self, activity_id: str) -> HistoryBuilder:
        self.started[activity_id] = self.add(wire.ActivityTaskStartedAttributes(
            scheduled_event_id=self.scheduled[activity_id])).event_id
        return self

    def activity_completed(self, activity_id: str, result: Any = None) -> HistoryBuilder:
        """ActivityTaskStarted (if missing) + ActivityTaskCompleted with ``result``."""
        if activity_id not in self.started:
            self.activity_started(activity_id)
        self.add(wire.ActivityTaskCompletedAttributes(
            result=CONV.to_payloads([result]), scheduled_event_id=self.scheduled[activity_id],
            started_event_id=self.started[activity_id]))
        return self

    def activity_failed(self, activity_id: str, failure: wire.Failure,
                        retry_state: wire.RetryState = wire.RetryState.MAXIMUM_ATTEMPTS_REACHED
                        ) -> HistoryBuilder:
        if activity_id not in self.started:
            self.activity_started(activity_id)
        self.add(wire.ActivityTaskFailedAttributes(
            failure=failure, scheduled_event_id=self.scheduled[activity_id],
            started_event_id=self.started[activity_id], retry_state=retry_state))
        return self

    def activity_timed_out(self, activity_id: str,
                           timeout_type: wire.TimeoutType = wire.TimeoutType.START_TO_CLOSE
                           ) -> HistoryBuilder:
        if activity_id not in self.started:
            self.activity_started(activity_id)
        self.add(wire.ActivityTaskTimedOutAttributes(
            failure=wire.Failure(message="activity timeout", kind=wire.FailureKind.TIMEOUT,
                                 timeout_type=timeout_type),
            scheduled_event_id=self.scheduled[activity_id],
            started_event_id=self.started[activity_id]))
        return self

    def timer_fired(self, timer_id: str) -> HistoryBuilder:
        self.add(wire.TimerFiredAttributes(timer_id=timer_id,
                                           started_event_id=self.timers[timer_id]))
        return self


class Driver:
    """Plays server and worker around one run: activate, then record what it produced.

    Args:
        cls: The ``@workflow.defn`` class.
        args: Workflow arguments.
        replay_every_task: Use a fresh instance with the full history for every task
            (what a worker without a cache, or after eviction, does).
    """

    def __init__(self, cls: type, *args: Any, replay_every_task: bool = False) -> None:
        self.defn = WorkflowDefinition.from_class(cls)
        self.history = HistoryBuilder(self.defn.name, *args)
        self.replay_every_task = replay_every_task
        self.instance = self.new_instance()
        self.seen = 0  # events the cached instance has been given

    def new_instance(self) -> WorkflowInstance:
        return WorkflowInstance(self.defn, namespace="default", task_queue="tq",
                                workflow_id="wf-1", run_id="run-1", converter=CONV)

    def activate(self) -> Activation:
        """Start a task and activate; on success record the commands (task completed)."""
        self.history.start_task()
        if self.replay_every_task:
            self.instance = self.new_instance()
            self.seen = 0
        activation = self.instance.activate(self.history.since(self.seen))
        self.seen = self.history.last_id
        if activation.failure is None:
            self.history.complete_task(activation.commands)
        return activation

    def result(self) -> Optional[Any]:
        """The decoded result if the last event is WorkflowExecutionCompleted."""
        last = self.history.events[-1].attributes
        assert isinstance(last, wire.WorkflowExecutionCompletedAttributes), last
        return CONV.from_payloads(last.result)[0]


def command_types(activation: Activation) -> list[str]:
    """Class names of an activation's commands, for compact assertions."""
    return [type(c).__name__ for c in activation.commands]
