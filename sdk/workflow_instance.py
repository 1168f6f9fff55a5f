"""The worker's handle on one workflow run: history in, commands out (replay included).

Owns: walking history workflow task by workflow task, running the workflow for each task
that history says completed and checking that the commands it produces match the events
recorded after that task's WorkflowTaskCompleted (the non-determinism check), then running
the current task and returning its new commands. Also rebuilding the run from the full
history when the cached state cannot continue (a task attempt failed or timed out, or the
server resent the history from event 1). Must not: do I/O, read a clock, or talk to the
server; the worker does that with the ``Activation`` this returns.

History conventions relied on (the server guarantees them): event ids dense from 1;
WorkflowExecutionStarted first; a task is WorkflowTaskScheduled, WorkflowTaskStarted, then
Completed / Failed / TimedOut; after Completed come the events recorded from that task's
commands in command order; a failed or timed-out attempt's commands were never recorded,
so the next attempt runs from the same point (and so do we, skipping the attempt).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Optional

from shoal import wire
from shoal.sdk import exceptions
from shoal.sdk._commands import (COMMAND_EVENT_TYPES, NondeterminismError, ProducedCommand,
                                 describe_command, describe_event, matches)
from shoal.sdk._definition import WorkflowDefinition
from shoal.sdk._interactions import QueryError, patch_id_of
from shoal.sdk._runtime import WorkflowRuntime
from shoal.sdk._workflow_types import HistoryMismatch
from shoal.sdk.converter import DataConverter

log = logging.getLogger(__name__)

ET = wire.EventType
Cause = wire.WorkflowTaskFailedCause


@dataclass
class Activation:
    """What the worker sends back for one workflow task.

    ``failure`` None: complete the task with ``commands``. Set: fail the task with
    ``failure`` and ``cause`` instead (commands are then empty).
    """

    commands: list[wire.Command] = field(default_factory=list)
    failure: Optional[wire.Failure] = None
    cause: Optional[wire.WorkflowTaskFailedCause] = None


class _TaskFailed(Exception):
    def __init__(self, failure: wire.Failure, cause: wire.WorkflowTaskFailedCause) -> None:
        super().__init__(failure.message)
        self.failure, self.cause = failure, cause


def _nondeterminism(message: str) -> _TaskFailed:
    failure = wire.Failure(message=f"Nondeterminism error: {message}",
                           type=NondeterminismError.__name__)
    return _TaskFailed(failure, Cause.NON_DETERMINISTIC_ERROR)


def _accepted_updates(events: list[wire.HistoryEvent], start: int) -> list[wire.UpdateRequest]:
    """Updates a replayed task accepted (its command block's UpdateAccepted events)."""
    found = []
    for event in events[start:]:
        if event.event_type not in COMMAND_EVENT_TYPES:
            break
        if isinstance(event.attributes, wire.WorkflowExecutionUpdateAcceptedAttributes):
            found.append(event.attributes.accepted_request)
    return found


class _Replay:
    """Consumes history for one ``WorkflowRuntime``; survives across activations."""

    def __init__(self, runtime: WorkflowRuntime) -> None:
        self.runtime = runtime
        self.pending: list[wire.HistoryEvent] = []  # to apply at the next task run
        self.expect: Optional[collections.deque[ProducedCommand]] = None  # awaiting records
        self.matching = False  # inside the command-event block after WorkflowTaskCompleted
        self.awaiting_outcome = False  # ran the current task; its outcome is unknown yet
        self.failed = False

    def can_continue_with(self, first: wire.HistoryEvent) -> bool:
        """Whether new events starting at ``first`` extend this state (else rebuild)."""
        return (not self.failed and self.awaiting_outcome
                and first.event_type == ET.WORKFLOW_TASK_COMPLETED)

    def feed(self, events: list[wire.HistoryEvent], updates: list[wire.UpdateRequest] = ()) -> Activation:
        """Process ``events``; return the current task's commands or a task failure.

        ``updates`` are delivered with the current (last, not yet completed) task.
        """
        try:
            return self._feed(events, list(updates))
        except _TaskFailed as tf:
            self.failed = True
            return Activation(failure=tf.failure, cause=tf.cause)
        except HistoryMismatch as exc:
            self.failed = True
            tf = _nondeterminism(str(exc))
            return Activation(failure=tf.failure, cause=tf.cause)

    def _feed(self, events: list[wire.HistoryEvent], updates: list[wire.UpdateRequest]) -> Activation:
        for i, event in enumerate(events):
            et = event.event_type
            if self.matching and et not in COMMAND_EVENT_TYPES:
                self._end_matching(event)
            if et == ET.WORKFLOW_TASK_STARTED:
                following = events[i + 1] if i + 1 < len(events) else None
                if following is not None and following.event_type != ET.WORKFLOW_TASK_COMPLETED:
                    # A failed or timed-out attempt (or one the run closed under): its
                    # commands were never recorded, so its events wait for the next one.
                    continue
                if following is not None:
                    self._note_patches(events, i + 2)
                    task_updates = _accepted_updates(events, i + 2)
                else:
                    task_updates = updates
                self._run_task(event, replaying=following is not None, updates=task_updates)
                if following is None:
                    self.awaiting_outcome = True
                    assert self.expect is not None
                    return Activation(commands=[p.command for p in self.expect])
            elif et == ET.WORKFLOW_TASK_COMPLETED:
                if self.expect is None:
                    raise HistoryMismatch(
                        f"WorkflowTaskCompleted at event {event.event_id} follows no task "
                        "this worker ran")
                self.matching, self.awaiting_outcome = True, False
            elif et in COMMAND_EVENT_TYPES:
                if not self.matching:
                    raise HistoryMismatch(f"{describe_event(event)} outside a task's commands")
                self._match(event)
            elif et in (ET.WORKFLOW_TASK_SCHEDULED, ET.WORKFLOW_TASK_FAILED,
                        ET.WORKFLOW_TASK_TIMED_OUT):
                pass
            else:
                self.pending.append(event)
        # History ended without a task to run (a closed run replayed to check it).
        if self.matching:
            self._end_matching(None)
        return Activation()

    def _run_task(self, started: wire.HistoryEvent, *, replaying: bool,
                  updates: list[wire.UpdateRequest]) -> None:
        events, self.pending = self.pending, []
        produced = self.runtime.run_task(started, events, replaying=replaying, updates=updates)
        failure = self.runtime.task_failure
        if failure is not None:
            rt = self.runtime
            log.warning("workflow task failed workflow_id=%s run_id=%s event_id=%d error=%r",
                        rt.workflow_id, rt.run_id, started.event_id, failure)
            raise _TaskFailed(exceptions.error_to_failure(failure, rt.converter),
                              Cause.WORKFLOW_WORKER_UNHANDLED_FAILURE)
        self.expect = collections.deque(produced)

    def _note_patches(self, events: list[wire.HistoryEvent], start: int) -> None:
        """Tell the runtime which patch markers the task about to be replayed recorded."""
        for event in events[start:]:
            if event.event_type not in COMMAND_EVENT_TYPES:
                break
            patch_id = patch_id_of(event, self.runtime.converter)
            if patch_id is not None:
                self.runtime.interactions.recorded_patches.add(patch_id)

    def _match(self, event: wire.HistoryEvent) -> None:
        assert self.expect is not None
        if patch_id_of(event, self.runtime.converter) is not None and not (
                self.expect and matches(self.expect[0].command, event)):
            # A patch marker the code no longer asks about (its deprecate_patch call was
            # removed): skipping it is what lets a deprecated patch be deleted (as Temporal).
            return
        if not self.expect:
            raise _nondeterminism(
                f"history has {describe_event(event)}, but the workflow produced no "
                "matching command")
        produced = self.expect.popleft()
        if not matches(produced.command, event):
            raise _nondeterminism(
                f"history has {describe_event(event)}, but the workflow produced "
                f"{describe_command(produced.command)}")
        self.runtime.on_recorded(produced, event)

    def _end_matching(self, event: Optional[wire.HistoryEvent]) -> None:
        assert self.expect is not None
        if self.expect:
            where = "the end of history" if event is None else describe_event(event)
            raise _nondeterminism(
                f"the workflow produced {describe_command(self.expect[0].command)}, but "
                f"history has {where} instead")
        self.matching, self.expect = False, None


class WorkflowInstance:
    """One workflow run as the worker caches it.

    Args:
        defn: The workflow's definition (``WorkflowDefinition.from_class``).
        namespace, task_queue, workflow_id, run_id: Identity of the run.
        converter: The data converter for arguments, results and failures.
    """

    def __init__(self, defn: WorkflowDefinition, *, namespace: str, task_queue: str,
                 workflow_id: str, run_id: str, converter: DataConverter) -> None:
        self.defn = defn
        self.namespace = namespace
        self.task_queue = task_queue
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.converter = converter
        self._history: list[wire.HistoryEvent] = []
        self._replay: Optional[_Replay] = None

    @property
    def next_event_id(self) -> int:
        """The event id the next ``activate`` must start with (or 1, to start over)."""
        return len(self._history) + 1

    @property
    def is_closed(self) -> bool:
        """Whether the run has produced its Complete/Fail command."""
        return self._replay is not None and self._replay.runtime.closed

    def activate(self, events: list[wire.HistoryEvent],
                 updates: list[wire.UpdateRequest] = ()) -> Activation:
        """Advance the run by the events it has not seen yet.

        Args:
            events: New history ending with the current WorkflowTaskStarted: the whole
                history for a new instance (or to start over), else only what follows the
                last activation's events.

        Returns:
            The current task's commands, or a task failure with its cause:
            NON_DETERMINISTIC_ERROR when replay disagrees with history,
            WORKFLOW_WORKER_UNHANDLED_FAILURE for an exception in workflow code,
            RESET_STICKY_TASK_QUEUE when ``events`` do not continue what this instance
            has seen (evict it and let the server resend the full history).
        """
        if not events:
            raise ValueError("activate needs at least the WorkflowTaskStarted event")
        if events[0].event_id == 1:
            self._drop_run()
            self._history = []
        gap = self._gap(events)
        if gap is not None:
            return Activation(failure=wire.Failure(message=gap, type="HistoryGap"),
                              cause=Cause.RESET_STICKY_TASK_QUEUE)
        self._history.extend(events)
        replay = self._replay
        if replay is None or not replay.can_continue_with(events[0]):
            # Rebuild from scratch: the cached state ran a task attempt whose commands
            # were not recorded (or a previous activation failed), so it cannot go on.
            self._drop_run()
            replay = self._replay = _Replay(self._new_runtime())
            return replay.feed(self._history, updates)
        return replay.feed(events, updates)

    def query(self, history: list[wire.HistoryEvent], name: str, args: list[bytes]) -> list[bytes]:
        """Replay ``history`` (a query task's: no task in flight) and run query ``name``.

        Raises:
            QueryError: the replay failed or the handler could not answer.
        """
        self._drop_run()
        self._history = list(history)
        replay = self._replay = _Replay(self._new_runtime())
        activation = replay.feed(self._history)
        if activation.failure is not None:
            raise QueryError(f"replaying the history failed: {activation.failure.message}")
        return replay.runtime.interactions.run_query(name, args)

    def answer_queries(self, queries: dict[str, wire.WorkflowQuery]) -> dict[str, wire.QueryAnswer]:
        """Answer a workflow task's queries on the state its activation left (Temporal's
        consistent queries: they see every event the task delivered). A handler's failure
        is that query's answer, not the task's."""
        answers: dict[str, wire.QueryAnswer] = {}
        replay = self._replay
        for query_id, query in queries.items():
            try:
                if replay is None:
                    raise QueryError("the workflow has no state to query")
                result = replay.runtime.interactions.run_query(query.query_type,
                                                               list(query.query_args))
                answers[query_id] = wire.QueryAnswer(result=result)
            except QueryError as exc:
                answers[query_id] = wire.QueryAnswer(error=str(exc))
        return answers

    def close(self) -> None:
        """Tear the run down (cancel its tasks); call when evicting it from the cache."""
        self._drop_run()

    def _gap(self, events: list[wire.HistoryEvent]) -> Optional[str]:
        expected = self.next_event_id
        for event in events:
            if event.event_id != expected:
                return (f"history gap: expected event {expected}, got {event.event_id}; "
                        "the worker must evict this run and replay the full history")
            expected += 1
        return None

    def _new_runtime(self) -> WorkflowRuntime:
        return WorkflowRuntime(self.defn, namespace=self.namespace, task_queue=self.task_queue,
                               workflow_id=self.workflow_id, run_id=self.run_id,
                               converter=self.converter)

    def _drop_run(self) -> None:
        if self._replay is not None:
            self._replay.runtime.dispose()
            self._replay = None
