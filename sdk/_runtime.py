"""One workflow run's in-memory state: the object, its tasks, timers, activities, commands.

Owns: turning workflow API calls (start an activity, sleep, wait for a condition) into
commands with sequence numbers, resolving the futures behind them when history events
are applied, running one workflow task's worth of callbacks on the ``WorkflowLoop``, and
deciding whether an exception fails the workflow or only the workflow task; cancel requests
(they cancel the run method's task; a run that then ends cancelled closes with
CancelWorkflowExecution). Composes two parts that reach it only through ``RuntimeCore``
(``_workflow_types``): ``self.interactions`` (signals, queries, updates, continue-as-new,
patches; ``_interactions.py``) and ``self.children`` (child and external workflows;
``_children.py``). Must not: walk history or compare commands with it
(``workflow_instance.py`` does), do I/O, read a clock, or import ``workflow.py`` (which
imports this, so that would close a circle).

Ids (as Temporal's SDKs): one sequence counter per run numbers activities and timers in
the order workflow code asks for them; ``activity_id`` defaults to ``str(seq)`` and
``timer_id`` is ``str(seq)``. Replay re-runs the same code, so it re-derives the same ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from shoal import wire
from shoal.sdk import exceptions
from shoal.sdk._commands import TERMINAL_COMMANDS, ProducedCommand
from shoal.sdk._definition import WorkflowDefinition
from shoal.sdk._children import ChildWorkflows
from shoal.sdk._interactions import ContinueAsNewError, Interactions
from shoal.sdk._loop import DurableTimerHandle, WorkflowLoop
from shoal.sdk._workflow_types import ActivityHandle, HistoryMismatch, Info
from shoal.sdk.common import RetryPolicy
from shoal.sdk.converter import DataConverter, decode_search_attributes, encode_search_attributes

log = logging.getLogger(__name__)


# Closes the server decides on its own; they never need workflow code to react.
_CLOSING_EVENTS = frozenset({wire.EventType.WORKFLOW_EXECUTION_TERMINATED,
                             wire.EventType.WORKFLOW_EXECUTION_TIMED_OUT})


@dataclass(slots=True)
class _PendingActivity:
    seq: int
    future: asyncio.Future[Any]
    activity_id: str
    activity_type: str
    result_type: Any
    cancellation_type: int = 0  # workflow.ActivityCancellationType
    scheduled_event_id: int = 0  # known once history recorded the schedule
    cancel_sent: bool = False


def _seconds(value: Optional[timedelta]) -> Optional[float]:
    return None if value is None else value.total_seconds()


def seed_from_run_id(run_id: str) -> int:
    """A stable 64-bit seed (``hash()`` of a str differs per process; sha256 does not)."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")


class WorkflowRuntime:
    """The state of one run of one workflow, advanced one workflow task at a time.

    Args:
        defn: The workflow definition.
        namespace, task_queue, workflow_id, run_id: Identity of the run.
        converter: Encodes arguments/results and decodes them with type hints.
    """

    def __init__(self, defn: WorkflowDefinition, *, namespace: str, task_queue: str,
                 workflow_id: str, run_id: str, converter: DataConverter) -> None:
        self.defn = defn
        self.converter = converter
        self.namespace = namespace
        self.task_queue = task_queue
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.loop = WorkflowLoop(self)
        self.loop.shoal_runtime = self
        self.random = random.Random(seed_from_run_id(run_id))
        self.info: Optional[Info] = None
        self.replaying = False
        self.history_length = 0
        self.commands: list[ProducedCommand] = []  # this workflow task's, in order
        self.task_failure: Optional[BaseException] = None
        self.closed = False  # a Complete/Fail command exists: later commands are dropped
        self.disposed = False
        self._seq = 0
        self._activities: dict[int, _PendingActivity] = {}
        self._scheduled: dict[int, int] = {}  # ActivityTaskScheduled event id -> seq
        self._timers: dict[str, DurableTimerHandle] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[Any]]] = []
        self._main: Optional[asyncio.Task[None]] = None
        self.workflow_object: Any = None  # built when the run starts
        self._args: list[Any] = []
        self._start_main = False  # start the run method once this task's events are applied
        self.cancel_requested = False
        # The parts reach this object only through RuntimeCore (_workflow_types).
        self.interactions = Interactions(self)
        self.children = ChildWorkflows(self)

    # --- driven by the instance ------------------------------------------------------

    def run_task(self, started: wire.HistoryEvent, events: list[wire.HistoryEvent],
                 *, replaying: bool, updates: list[wire.UpdateRequest] = ()) -> list[ProducedCommand]:
        """Apply ``events`` (history since the last task), then run until blocked.

        Args:
            started: The WorkflowTaskStarted event of the task: its time is ``loop.time()``.
            events: Non-command events to apply, in history order.
            replaying: True when history already records this task's outcome.
            updates: Updates this task delivers (accepted ones only, when replaying).

        Returns:
            The commands this task produced, in order. Check ``task_failure`` first.

        Raises:
            HistoryMismatch: An event refers to an activity or run this history never began.
        """
        assert started.event_type == wire.EventType.WORKFLOW_TASK_STARTED
        self.loop.set_time(started.event_time)
        self.history_length = started.event_id
        self.replaying = replaying
        self.commands = []
        self.task_failure = None
        for event in events:
            self._apply(event)
        if self._start_main:
            # After this task's signals: their handlers run before the run method starts.
            self._start_main = False
            self._main = self.loop.create_task(self._run_main(), name=f"workflow:{self.workflow_id}")
        for request in updates:
            self.interactions.on_update(request)
        error = self.loop.run_until_idle(self._check_conditions, lambda: self.task_failure is not None)
        if error is not None and self.task_failure is None:
            self.task_failure = error
        return self.commands

    def on_recorded(self, produced: ProducedCommand, event: wire.HistoryEvent) -> None:
        """History recorded ``produced`` as ``event``: remember ids completions refer to."""
        if event.event_type == wire.EventType.ACTIVITY_TASK_SCHEDULED:
            self._scheduled[event.event_id] = produced.seq
            act = self._activities.get(produced.seq)
            if act is not None:
                act.scheduled_event_id = event.event_id
        else:
            self.children.on_recorded(produced.seq, event)

    def dispose(self) -> None:
        """Cancel every task so workflow ``finally`` blocks run now, on this loop.

        Commands produced meanwhile are dropped and the logger stays silent; without this,
        coroutines would be closed later by the garbage collector with no loop installed.
        """
        self.disposed = self.closed = self.replaying = True
        for task in list(asyncio.all_tasks(self.loop)):
            task.cancel()
        self.loop.run_until_idle(lambda: False, lambda: False)
        self._conditions.clear()

    # --- applying history ------------------------------------------------------------

    def _apply(self, event: wire.HistoryEvent) -> None:
        a = event.attributes
        if isinstance(a, wire.WorkflowExecutionStartedAttributes):
            self._on_started(event, a)
        elif isinstance(a, wire.ActivityTaskStartedAttributes):
            pass  # attempts are the server's business; the workflow waits for the outcome
        elif isinstance(a, wire.ActivityTaskCompletedAttributes):
            act = self._activity_for(a.scheduled_event_id, event)
            if act is not None:
                try:
                    (value,) = self.converter.from_payloads(a.result[:1], [act.result_type]) or [None]
                except Exception as exc:  # bad payload: the awaiting code sees the error
                    act.future.set_exception(exc)
                else:
                    act.future.set_result(value)
        elif isinstance(a, (wire.ActivityTaskFailedAttributes, wire.ActivityTaskTimedOutAttributes)):
            act = self._activity_for(a.scheduled_event_id, event)
            if act is not None:
                act.future.set_exception(self._activity_error(act, a))
        elif isinstance(a, wire.ActivityTaskCanceledAttributes):
            act = self._activity_for(a.scheduled_event_id, event)
            if act is not None:
                act.future.set_exception(self._activity_cancelled_error(act))
        elif isinstance(a, wire.TimerFiredAttributes):
            handle = self._timers.pop(a.timer_id, None)
            # None: the timer was cancelled in the task that raced with its firing.
            if handle is not None:
                self.loop.fire(handle)
        elif isinstance(a, wire.WorkflowExecutionSignaledAttributes):
            if self.workflow_object is not None:
                self.interactions.on_signal(a)
        elif isinstance(a, wire.WorkflowExecutionCancelRequestedAttributes):
            self._on_cancel_requested()
        elif self.children.apply(event):
            pass
        elif event.event_type in _CLOSING_EVENTS:
            pass  # closed by the server; no later task will run this code
        else:
            raise HistoryMismatch(
                f"event {event.event_id} ({event.event_type.name}) is not supported yet")

    def _on_started(self, event: wire.HistoryEvent,
                    a: wire.WorkflowExecutionStartedAttributes) -> None:
        if self._main is not None or self._start_main:
            raise HistoryMismatch(f"second WorkflowExecutionStarted at event {event.event_id}")
        self.task_queue = a.task_queue or self.task_queue
        self.info = Info(
            attempt=a.attempt, namespace=self.namespace, run_id=self.run_id,
            workflow_id=self.workflow_id, workflow_type=a.workflow_type,
            task_queue=self.task_queue,
            start_time=datetime.fromtimestamp(event.event_time, timezone.utc),
            execution_timeout=_delta(a.workflow_execution_timeout_s),
            run_timeout=_delta(a.workflow_run_timeout_s),
            task_timeout=timedelta(seconds=a.workflow_task_timeout_s),
            first_execution_run_id=a.first_execution_run_id or self.run_id,
            continued_run_id=a.continued_execution_run_id,
            retry_policy=None if a.retry_policy is None else RetryPolicy.from_wire(a.retry_policy),
            search_attributes=decode_search_attributes(a.search_attributes),
            memo=self._decode_map(a.memo),
        )
        # The object exists before any signal is applied, so its handlers can receive them.
        try:
            self._args = self.converter.from_payloads(list(a.input), self.defn.arg_types)
            self.workflow_object = (self.defn.cls(*self._args) if self.defn.init_takes_args
                                    else self.defn.cls())
        except Exception as exc:
            self.task_failure = exc
            return
        self.interactions.bind_handlers(self.workflow_object)
        self._start_main = True

    def _on_cancel_requested(self) -> None:
        """Cancel the run method's task; workflow code decides how the run then ends."""
        self.cancel_requested = True
        if self._main is not None and not self._main.done():
            self._main.cancel()

    def _outcome_after_cancel(self, exc: BaseException) -> bool:
        """If the run ended by cancellation after a cancel request, add the Cancel command."""
        if self.cancel_requested and exceptions.is_cancelled_exception(exc):
            self.add_command(wire.CancelWorkflowExecutionCommand())
            return True
        return False

    def _decode_map(self, encoded: dict[str, bytes]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, payload in encoded.items():
            try:
                (out[key],) = self.converter.from_payloads([payload], None)
            except Exception:  # not ours to decode: keep the raw payload
                out[key] = payload
        return out

    def upsert_search_attributes(self, attributes: dict[str, Any]) -> None:
        """``workflow.upsert_search_attributes``: an UpsertWorkflowSearchAttributes command."""
        encoded = encode_search_attributes(attributes)
        self.add_command(wire.UpsertWorkflowSearchAttributesCommand(search_attributes=encoded))
        assert self.info is not None
        for key, value in attributes.items():
            if value is None:
                self.info.search_attributes.pop(key, None)
            else:
                self.info.search_attributes[key] = value

    def upsert_memo(self, updates: dict[str, Any]) -> None:
        """``workflow.upsert_memo``: a ModifyWorkflowProperties command (None removes a key)."""
        encoded = {k: b"" if v is None else self.converter.to_payloads([v])[0]
                   for k, v in updates.items()}
        self.add_command(wire.ModifyWorkflowPropertiesCommand(upserted_memo=encoded))
        assert self.info is not None
        memo = self.info.memo  # Info is frozen; its memo dict is this run's own
        assert isinstance(memo, dict)
        for key, value in updates.items():
            if value is None:
                memo.pop(key, None)
            else:
                memo[key] = value

    def _activity_for(self, scheduled_event_id: int,
                      event: wire.HistoryEvent) -> Optional[_PendingActivity]:
        seq = self._scheduled.get(scheduled_event_id)
        if seq is None:
            raise HistoryMismatch(
                f"event {event.event_id} ({event.event_type.name}) refers to scheduled event "
                f"{scheduled_event_id}, which is not an activity this workflow scheduled")
        act = self._activities.pop(seq, None)
        # Done already: the workflow cancelled its handle and no longer wants the outcome.
        return act if act is not None and not act.future.done() else None

    def _activity_error(self, act: _PendingActivity, a: Any) -> exceptions.ActivityError:
        timed_out = isinstance(a, wire.ActivityTaskTimedOutAttributes)
        err = exceptions.ActivityError(
            "Activity task timed out" if timed_out else "Activity task failed",
            scheduled_event_id=a.scheduled_event_id, started_event_id=a.started_event_id,
            identity="" if timed_out else a.identity, activity_type=act.activity_type,
            activity_id=act.activity_id, retry_state=exceptions.RetryState(int(a.retry_state)))
        err.__cause__ = exceptions.failure_to_error(a.failure, self.converter)
        return err

    def _activity_cancelled_error(self, act: _PendingActivity) -> exceptions.ActivityError:
        err = exceptions.ActivityError(
            "Activity cancelled", scheduled_event_id=act.scheduled_event_id, started_event_id=0,
            identity="", activity_type=act.activity_type, activity_id=act.activity_id,
            retry_state=exceptions.RetryState.CANCEL_REQUESTED)
        err.__cause__ = exceptions.CancelledError("Cancelled")
        return err

    async def _activity_result(self, act: _PendingActivity) -> Any:
        """What awaiting an activity handle gives; cancelling the handle cancels the activity.

        As temporalio: TRY_CANCEL asks the server to cancel and raises at once,
        WAIT_CANCELLATION_COMPLETED asks and waits for the activity's end, ABANDON only
        raises. The raised error is ActivityError caused by CancelledError.
        """
        while True:
            future = act.future
            try:
                return await future
            except asyncio.CancelledError:
                if not future.cancelled():
                    raise
                # The handle was cancelled (its future with it): a fresh future takes the
                # activity's eventual outcome. Awaiting the future directly, not through
                # asyncio.shield, keeps an outcome that lands in the same task as a cancel
                # ahead of it, as without cancellation support.
                act.future = self.loop.create_future()
                dropped = self._request_activity_cancel(act)
                if dropped or act.cancellation_type != 1:  # 1: WAIT_CANCELLATION_COMPLETED
                    act.future.cancel()  # later outcome events are ignored
                    raise self._activity_cancelled_error(act)

    def _request_activity_cancel(self, act: _PendingActivity) -> bool:
        """Ask the server to cancel; True if the schedule was never sent (nothing to ask)."""
        if act.cancel_sent or act.cancellation_type == 2:  # ABANDON: the server is not told
            return False
        act.cancel_sent = True
        if self.drop_unsent(act.seq, wire.ScheduleActivityTaskCommand):
            # Scheduled and cancelled in one task: the server never hears of it.
            self._activities.pop(act.seq, None)
            return True
        self.add_command(wire.RequestCancelActivityTaskCommand(scheduled_event_id=act.scheduled_event_id), act.seq)
        return False

    # --- the main coroutine ------------------------------------------------------------

    async def _run_main(self) -> None:
        """Run the workflow's run method and turn its outcome into a close command."""
        try:
            result = await self.defn.run_fn(self.workflow_object, *self._args)
            payloads = self.converter.to_payloads([result])
        except ContinueAsNewError as can:
            self.add_command(can.command)
            return
        except asyncio.CancelledError as exc:
            if self.disposed or self._outcome_after_cancel(exc):
                return
            self.task_failure = RuntimeError("the workflow's run method was cancelled "
                                             "without a cancel request")
            self.task_failure.__cause__ = exc
            return
        except Exception as exc:
            self.settle_failure(exc)
            return
        self.add_command(wire.CompleteWorkflowExecutionCommand(result=payloads))

    def settle_failure(self, exc: Exception) -> None:
        """An exception escaped workflow code: fail the workflow, or only the task."""
        if self._outcome_after_cancel(exc):
            return
        if isinstance(exc, (exceptions.FailureError, *self.defn.failure_exception_types)):
            failure = exceptions.error_to_failure(exc, self.converter)
            self.add_command(wire.FailWorkflowExecutionCommand(failure=failure))
        else:
            # A bug (or a non-failure exception): fail the workflow task so the server
            # retries it, perhaps on a fixed deployment, as temporalio does.
            self.task_failure = exc

    # --- commands ----------------------------------------------------------------------

    def next_seq(self) -> int:
        """The next command sequence number (activities, timers, children, externals)."""
        self._seq += 1
        return self._seq

    def add_command(self, command: wire.Command, seq: int = 0) -> None:
        """Append ``command`` to this task's; dropped once a close command exists."""
        if self.closed:
            return  # Temporal ignores commands after the run's close command too
        self.commands.append(ProducedCommand(command, seq))
        if isinstance(command, TERMINAL_COMMANDS):
            self.closed = True

    def drop_unsent(self, seq: int, kind: type) -> bool:
        """Remove this task's command ``seq`` of type ``kind``: it was created and
        cancelled within one task. False if no such command is waiting to be sent."""
        for i, produced in enumerate(self.commands):
            if produced.seq == seq and isinstance(produced.command, kind):
                del self.commands[i]
                return True
        return False

    # --- timers (the loop's TimerSink) ---------------------------------------------------

    def start_timer(self, handle: DurableTimerHandle, delay_s: float) -> None:
        """``call_later`` in workflow code: a StartTimer command."""
        seq = self.next_seq()
        handle.timer_id = str(seq)
        self._timers[handle.timer_id] = handle
        self.add_command(wire.StartTimerCommand(timer_id=handle.timer_id,
                                         start_to_fire_timeout_s=delay_s), seq)

    def cancel_timer(self, handle: DurableTimerHandle) -> None:
        """A pending timer handle was cancelled: CancelTimer, or drop a not-yet-sent start."""
        if self._timers.pop(handle.timer_id, None) is None:
            return
        for i, produced in enumerate(self.commands):
            cmd = produced.command
            if isinstance(cmd, wire.StartTimerCommand) and cmd.timer_id == handle.timer_id:
                # Started and cancelled within one task: the server never hears of it.
                del self.commands[i]
                return
        self.add_command(wire.CancelTimerCommand(timer_id=handle.timer_id), int(handle.timer_id))

    # --- the workflow API (called from shoal.sdk.workflow) ------------------------------

    def start_activity(
        self, *, activity_type: str, args: list[Any], task_queue: Optional[str],
        schedule_to_close_timeout: Optional[timedelta],
        schedule_to_start_timeout: Optional[timedelta],
        start_to_close_timeout: Optional[timedelta], heartbeat_timeout: Optional[timedelta],
        retry_policy: Optional[RetryPolicy], activity_id: Optional[str], result_type: Any,
        cancellation_type: int = 0,
    ) -> ActivityHandle[Any]:
        """Schedule an activity now (the command goes out with this task)."""
        seq = self.next_seq()
        act = _PendingActivity(seq=seq, future=self.loop.create_future(),
                               activity_id=activity_id or str(seq),
                               activity_type=activity_type, result_type=result_type,
                               cancellation_type=int(cancellation_type))
        command = wire.ScheduleActivityTaskCommand(
            activity_id=act.activity_id, activity_type=activity_type,
            task_queue=task_queue or self.task_queue,
            input=self.converter.to_payloads(args),
            schedule_to_close_timeout_s=_seconds(schedule_to_close_timeout),
            schedule_to_start_timeout_s=_seconds(schedule_to_start_timeout),
            start_to_close_timeout_s=_seconds(start_to_close_timeout),
            heartbeat_timeout_s=_seconds(heartbeat_timeout),
            retry_policy=None if retry_policy is None else retry_policy.to_wire(),
        )
        self._activities[seq] = act
        self.add_command(command, seq)
        return ActivityHandle(self._activity_result(act), loop=self.loop,
                              name=f"activity:{act.activity_id}")

    def add_condition(self, fn: Callable[[], bool], future: asyncio.Future[Any]) -> None:
        """Resolve ``future`` once ``fn()`` is true (checked whenever the loop is idle)."""
        self._conditions.append((fn, future))

    def _check_conditions(self) -> bool:
        # One condition at a time, in registration order, then run the loop again: the
        # woken code may change state that makes the next condition false (as temporalio).
        for i, (fn, fut) in enumerate(self._conditions):
            if fut.done():
                continue
            try:
                ready = fn()
            except Exception as exc:
                del self._conditions[i]
                fut.set_exception(exc)
                return True
            if ready:
                del self._conditions[i]
                fut.set_result(True)
                return True
        self._conditions = [(fn, fut) for fn, fut in self._conditions if not fut.done()]
        return False

    def now(self) -> datetime:
        """The current workflow task's start time (UTC)."""
        return datetime.fromtimestamp(self.loop.time(), timezone.utc)


def _delta(seconds: Optional[float]) -> Optional[timedelta]:
    return None if seconds is None else timedelta(seconds=seconds)
