"""The worker: polls a task queue, runs workflow tasks and activities, reports back.

Owns: poll loops with bounded concurrency, the cache of live workflow instances
(``max_cached_workflows``), running activities (trio coroutines, or plain functions in worker
threads) with ``activity.info()`` set, and reporting results and failures. Must not: decide
workflow semantics (the instance replays history; the node decides retries and timeouts).
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass
import logging
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import trio

from shoal import wire
from shoal.sdk import activity as _activity
from shoal.sdk import exceptions as _exc
from shoal.sdk.client import Client
from shoal.sdk.connection import RPCError
from shoal.sdk.workflow import WorkflowDefinition
from shoal.sdk._commands import TERMINAL_COMMANDS
from shoal.sdk._heartbeat import Heartbeater
from shoal.sdk._interactions import QueryError
from shoal.sdk.workflow_instance import WorkflowInstance
from shoal.sdk._replayer import Replayer, WorkflowReplayResult, WorkflowReplayResults  # noqa: F401  (shoal.worker re-exports)

log = logging.getLogger(__name__)

POLL_WAIT_S = 30.0
EAGER_MAX = 3  # activities a workflow task may ask to start eagerly (the node's limit too)
LOCAL_TIMEOUT_GRACE_S = 1.0  # past start-to-close the node has timed the attempt out anyway
_BENIGN = frozenset({wire.Code.TASK_NOT_FOUND, wire.Code.NOT_FOUND, wire.Code.WORKFLOW_NOT_RUNNING})


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _td(secs: float | None) -> timedelta | None:
    return None if secs is None else timedelta(seconds=secs)


class _CachedRun:
    __slots__ = ("instance", "last_started_event_id")

    def __init__(self, instance: WorkflowInstance) -> None:
        self.instance = instance
        self.last_started_event_id = 0


@dataclass(slots=True)
class _Outcome:
    """How an activity function ended (nothing set: it completes asynchronously or was
    abandoned)."""

    completed: bool = False
    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False  # it raised a cancellation error


class Worker:
    """Runs workflows and activities from one task queue (temporalio's ``Worker``).

    Use as ``async with Worker(...):`` (runs in the background of the block) or
    ``await worker.run()`` (runs until cancelled).
    """

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        max_concurrent_activities: int = 100,
        max_concurrent_workflow_tasks: int = 100,
        max_cached_workflows: int = 1000,
        max_concurrent_workflow_task_polls: int = 16,
        max_concurrent_activity_task_polls: int = 16,
        identity: str | None = None,
        disable_eager_activity_execution: bool = False,
        sticky_queue_schedule_to_start_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        if not workflows and not activities:
            raise ValueError("a worker needs at least one workflow or activity")
        self.client = client
        self.task_queue = task_queue
        self.identity = identity or client.identity
        self._workflows: dict[str, WorkflowDefinition] = {}
        for cls in workflows:
            d = WorkflowDefinition.from_class(cls)
            if d.name in self._workflows:
                raise ValueError(f"workflow {d.name!r} registered twice")
            self._workflows[d.name] = d
        self._activities: dict[str, _activity.ActivityDefinition] = {}
        for fn in activities:
            a = _activity.ActivityDefinition.from_callable(fn)
            if a.name in self._activities:
                raise ValueError(f"activity {a.name!r} registered twice")
            self._activities[a.name] = a
        self._max_activities = max_concurrent_activities
        self._max_wf_tasks = max_concurrent_workflow_tasks
        self._wf_polls = max_concurrent_workflow_task_polls
        self._act_polls = max_concurrent_activity_task_polls
        self._max_cached = max_cached_workflows
        self._sticky_queue = f"{task_queue}-sticky-{uuid.uuid4().hex[:12]}"
        self._sticky_timeout_s = sticky_queue_schedule_to_start_timeout.total_seconds()
        self._eager = not disable_eager_activity_execution
        self._cache: collections.OrderedDict[str, _CachedRun] = collections.OrderedDict()
        self._nursery_cm: Any = None
        self._nursery: trio.Nursery | None = None
        self._activity_slots: trio.Semaphore | None = None
        self._task_nursery: trio.Nursery | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        self._nursery_cm = trio.open_nursery()
        nursery = await self._nursery_cm.__aenter__()
        self._nursery = nursery
        nursery.start_soon(self._run_all)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        return await self._nursery_cm.__aexit__(*exc_info)

    async def run(self) -> None:
        """Poll and run tasks until cancelled."""
        await self._run_all()

    async def _run_all(self) -> None:
        async with trio.open_nursery() as nursery:
            if self._workflows:
                slots = trio.Semaphore(self._max_wf_tasks)
                for _ in range(self._wf_polls):
                    nursery.start_soon(self._poll_loop, wire.Op.POLL_WORKFLOW_TASK, slots,
                                       self._run_workflow_task, nursery)
                if self._max_cached > 0:
                    # This worker's sticky queue: next tasks of runs it caches, new events only.
                    for _ in range(max(1, self._wf_polls // 2)):
                        nursery.start_soon(self._poll_loop, wire.Op.POLL_WORKFLOW_TASK, slots,
                                           self._run_workflow_task, nursery, self._sticky_queue)
            if self._activities:
                slots = trio.Semaphore(self._max_activities)
                self._activity_slots, self._task_nursery = slots, nursery
                for _ in range(self._act_polls):
                    nursery.start_soon(self._poll_loop, wire.Op.POLL_ACTIVITY_TASK, slots,
                                       self._run_activity, nursery)

    async def _poll_loop(self, op: wire.Op, slots: trio.Semaphore, run: Callable[..., Any],
                         nursery: trio.Nursery, task_queue: str = "") -> None:
        req_type = wire.OP_TYPES[op][0]
        req = req_type(task_queue=task_queue or self.task_queue, identity=self.identity, wait_s=POLL_WAIT_S)
        while True:
            await slots.acquire()
            try:
                resp = await self.client.service.call(op, req, retry_for_s=math.inf)
            except RPCError as exc:
                slots.release()
                log.warning("poll failed op=%s code=%s: %s", op, exc.code, exc.message)
                await trio.sleep(1.0)
                continue
            except BaseException:
                slots.release()
                raise
            if resp.task is None:
                slots.release()
                continue
            nursery.start_soon(self._run_and_release, run, resp.task, slots)

    async def _run_and_release(self, run: Callable[..., Any], task: Any, slots: trio.Semaphore) -> None:
        try:
            await run(task)
        finally:
            slots.release()

    async def _report(self, op: wire.Op, body: Any) -> Any:
        try:
            return await self.client.service.call(op, body)
        except RPCError as exc:
            if exc.code in _BENIGN:
                # The node moved on (timed out, already completed): nothing to report to.
                log.info("task result not taken op=%s code=%s: %s", op, exc.code, exc.message)
            else:
                log.warning("task result refused op=%s code=%s: %s", op, exc.code, exc.message)

    # --- workflow tasks ----------------------------------------------------------------

    async def _run_workflow_task(self, task: wire.WorkflowTask) -> None:
        if task.query is not None:
            await self._answer_query(task, task.query)
            return
        defn = self._workflows.get(task.workflow_type)
        if defn is None:
            await self._fail_wt(task, wire.WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE,
                                f"workflow type {task.workflow_type!r} is not registered on this "
                                f"worker (registered: {sorted(self._workflows)})")
            return
        cached, events = self._instance_for(task, defn)
        try:
            activation = cached.instance.activate(events, task.updates)
        except Exception as exc:  # the instance's own bug: fail the task, keep serving
            log.exception("workflow activation crashed run_id=%s", task.run_id)
            await self._fail_wt(task, wire.WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE,
                                f"activation crashed: {exc!r}")
            return
        if activation.failure is not None:
            cached.instance.close()
            await self._report(wire.Op.FAIL_WORKFLOW_TASK, wire.FailWorkflowTaskRequest(
                task_token=task.task_token,
                cause=activation.cause or wire.WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE,
                failure=activation.failure, identity=self.identity,
            ))
            return
        answers = cached.instance.answer_queries(task.queries) if task.queries else {}
        commands, reserved = self._mark_eager(activation.commands)
        closes = any(isinstance(c, TERMINAL_COMMANDS) for c in activation.commands)
        keep = self._max_cached > 0 and not closes
        if keep:
            # Cached before the completion is sent: the next task may reach the sticky queue
            # as soon as the node commits it, before the completion's answer reaches us.
            cached.last_started_event_id = task.started_event_id
            self._cache[task.run_id] = cached
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)[1].instance.close()
        try:
            resp = await self._report(wire.Op.COMPLETE_WORKFLOW_TASK, wire.CompleteWorkflowTaskRequest(
                task_token=task.task_token, commands=commands, identity=self.identity,
                sticky_task_queue=self._sticky_queue if keep else "",
                sticky_schedule_to_start_timeout_s=self._sticky_timeout_s,
                query_results=answers,
            ))
        except BaseException:
            self._run_eager([], reserved)
            raise
        self._run_eager(resp.activity_tasks if resp is not None else [], reserved)
        if not keep:
            cached.instance.close()

    def _instance_for(self, task: wire.WorkflowTask, defn: Any) -> tuple[_CachedRun, list[wire.HistoryEvent]]:
        """The run's cached instance and the events it has not seen, or a new instance and
        the whole history (no cache entry, or one out of step with the task)."""
        cached = self._cache.pop(task.run_id, None)
        if cached is not None and cached.last_started_event_id == task.previous_started_event_id:
            return cached, [e for e in task.history if e.event_id > cached.last_started_event_id]
        if cached is not None:
            cached.instance.close()
        fresh = _CachedRun(WorkflowInstance(
            defn, namespace=self.client.namespace, task_queue=self.task_queue,
            workflow_id=task.workflow_id, run_id=task.run_id,
            converter=self.client.data_converter,
        ))
        return fresh, task.history

    async def _answer_query(self, task: wire.WorkflowTask, query: wire.WorkflowQuery) -> None:
        """Replay the run on a fresh instance (the cache is left alone) and run the handler."""
        result: list[bytes] = []
        error: str | None = None
        defn = self._workflows.get(task.workflow_type)
        if defn is None:
            error = f"workflow type {task.workflow_type!r} is not registered on this worker"
        else:
            instance = WorkflowInstance(
                defn, namespace=self.client.namespace, task_queue=self.task_queue,
                workflow_id=task.workflow_id, run_id=task.run_id, converter=self.client.data_converter,
            )
            try:
                result = instance.query(task.history, query.query_type, list(query.query_args))
            except QueryError as exc:
                error = str(exc)
            except Exception as exc:  # our own bug: answer, keep serving
                log.exception("query crashed run_id=%s", task.run_id)
                error = f"query crashed on the worker: {exc!r}"
            finally:
                instance.close()
        await self._report(wire.Op.RESPOND_QUERY_TASK, wire.RespondQueryTaskRequest(
            query_id=task.query_id, result=result, error=error))

    def _mark_eager(self, commands: list[wire.Command]) -> tuple[list[wire.Command], int]:
        """Ask the node to start our own activities in the completion (eager execution),
        reserving a slot for each so they can run at once."""
        slots = self._activity_slots
        if slots is None or not self._eager:
            return commands, 0
        out: list[wire.Command] = []
        reserved = 0
        for c in commands:
            if (isinstance(c, wire.ScheduleActivityTaskCommand) and reserved < EAGER_MAX
                    and c.activity_type in self._activities and c.task_queue == self.task_queue):
                try:
                    slots.acquire_nowait()
                except trio.WouldBlock:
                    out.append(c)
                    continue
                reserved += 1
                c = dataclasses.replace(c, request_eager_execution=True)
            out.append(c)
        return out, reserved

    def _run_eager(self, tasks: list[wire.ActivityTask], reserved: int) -> None:
        assert len(tasks) <= reserved
        for t in tasks:
            assert self._task_nursery is not None and self._activity_slots is not None
            self._task_nursery.start_soon(self._run_and_release, self._run_activity, t,
                                          self._activity_slots)
        for _ in range(reserved - len(tasks)):
            assert self._activity_slots is not None
            self._activity_slots.release()

    async def _fail_wt(self, task: wire.WorkflowTask, cause: wire.WorkflowTaskFailedCause, msg: str) -> None:
        await self._report(wire.Op.FAIL_WORKFLOW_TASK, wire.FailWorkflowTaskRequest(
            task_token=task.task_token, cause=cause,
            failure=wire.Failure(message=msg, type="WorkerError"), identity=self.identity,
        ))

    # --- activities --------------------------------------------------------------------

    async def _run_activity(self, task: wire.ActivityTask) -> None:
        conv = self.client.data_converter
        defn = self._activities.get(task.activity_type)
        if defn is None:
            err: BaseException = _exc.ApplicationError(
                f"activity type {task.activity_type!r} is not registered on this worker "
                f"(registered: {sorted(self._activities)})", type="NotFoundError",
            )
            await self._fail_activity(task, err)
            return
        try:
            args = conv.from_payloads(task.input, defn.arg_types[: len(task.input)] or None)
        except Exception as exc:
            await self._fail_activity(task, _exc.ApplicationError(
                f"cannot decode the arguments of {task.activity_type}: {exc}",
                type="DecodeError", non_retryable=True))
            return
        info = _activity.Info(
            activity_id=task.activity_id, activity_type=task.activity_type, attempt=task.attempt,
            task_token=task.task_token, task_queue=task.task_queue, workflow_id=task.workflow_id,
            workflow_run_id=task.run_id, workflow_type=task.workflow_type,
            workflow_namespace=self.client.namespace, scheduled_time=_dt(task.scheduled_time),
            current_attempt_scheduled_time=_dt(task.current_attempt_scheduled_time),
            started_time=_dt(task.started_time),
            schedule_to_close_timeout=_td(task.schedule_to_close_timeout_s),
            start_to_close_timeout=_td(task.start_to_close_timeout_s),
            heartbeat_timeout=_td(task.heartbeat_timeout_s),
            heartbeat_details=conv.from_payloads(task.heartbeat_details or [], None),
        )
        outcome = _Outcome()
        with trio.CancelScope() as attempt_scope:
            beats = Heartbeater(self.client.service, task, conv, attempt_scope, self.identity)
            await self._run_attempt(defn, args, info, task, beats, outcome)
        beats.close()
        if beats.gone:
            return  # the node timed the attempt out or the run closed: nothing to report
        if attempt_scope.cancelled_caught or (beats.cancel_requested and outcome.cancelled):
            if beats.cancel_requested:
                await self._report(wire.Op.RESPOND_ACTIVITY_TASK_CANCELED,
                                   wire.RespondActivityTaskCanceledRequest(
                                       task_token=task.task_token, identity=self.identity))
            return
        if outcome.error is not None:
            await self._fail_activity(task, outcome.error)
        elif outcome.completed:
            await self._report(wire.Op.COMPLETE_ACTIVITY_TASK, wire.CompleteActivityTaskRequest(
                task_token=task.task_token, result=conv.to_payloads([outcome.result]),
                identity=self.identity,
            ))

    async def _run_attempt(self, defn: Any, args: list[Any], info: _activity.Info,
                           task: wire.ActivityTask, beats: Heartbeater, outcome: _Outcome) -> None:
        """Run the activity function with its context and heartbeat sender beside it; fill
        ``outcome`` (raises Cancelled when the attempt is cancelled)."""
        ctx = _activity._Context(info=info, heartbeat=beats.heartbeat, is_cancelled=beats.is_cancelled)
        token = _activity._set_context(ctx)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(beats.run)
                limit = (task.start_to_close_timeout_s or math.inf) + LOCAL_TIMEOUT_GRACE_S
                with trio.move_on_after(limit) as scope:
                    try:
                        if defn.is_async:
                            outcome.result = await defn.fn(*args)
                        else:
                            outcome.result = await trio.to_thread.run_sync(
                                lambda: defn.fn(*args), abandon_on_cancel=True)
                        outcome.completed = True
                    except _activity.CompleteAsyncError:
                        pass  # completed later through an async activity handle
                    except Exception as exc:
                        outcome.cancelled = _exc.is_cancelled_exception(exc)
                        outcome.error = exc
                if scope.cancelled_caught:
                    log.info("activity abandoned after its start-to-close timeout id=%s",
                             task.activity_id)
                    outcome.completed, outcome.error = False, None
                nursery.cancel_scope.cancel()
        finally:
            _activity._reset_context(token)

    async def _fail_activity(self, task: wire.ActivityTask, exc: BaseException) -> None:
        failure = _exc.error_to_failure(exc, self.client.data_converter)
        await self._report(wire.Op.FAIL_ACTIVITY_TASK, wire.FailActivityTaskRequest(
            task_token=task.task_token, failure=failure, identity=self.identity,
        ))
