"""The API workflow code calls (``shoal.workflow``), name for name as ``temporalio.workflow``.

Owns: the decorators (re-exported from ``_definition``), ``execute_activity`` /
``start_activity``, ``info``, ``now``/``time``, deterministic ``uuid4``/``random``,
``wait_condition``, ``sleep``, the replay-silent ``logger`` and ``unsafe``. Each call finds
the run it belongs to through asyncio's running loop, which is a ``WorkflowLoop`` only
while a workflow task executes; calls about signals, updates, patches and continue-as-new
go to the run's ``interactions`` part, those about children and other workflows to its
``children`` part. ``Info``, ``ActivityHandle`` and ``ActivityCancellationType`` live in
``_workflow_types`` (so the runtime needs nothing from here) and are re-exported. Must
not: keep module-level mutable state (several runs share this module), read the wall
clock, do I/O, or be imported by the runtime or its parts (that would close a circle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import uuid
from datetime import datetime, timedelta
from typing import (TYPE_CHECKING, Any, Callable, Generic, Iterator, Mapping,
                    MutableMapping, NoReturn, Optional, Sequence, Union)

from shoal.sdk._commands import NondeterminismError
from shoal.sdk._children import ChildWorkflowCancellationType, ParentClosePolicy
from shoal.sdk._interactions import ContinueAsNewError
from shoal.sdk._definition import (HandlerDefinition, WorkflowDefinition, defn, init, query,
                                   run, signal, update)
from shoal.sdk._loop import WorkflowLoop
from shoal.sdk._workflow_types import (ActivityCancellationType, ActivityHandle, Info, ReturnType,
                                       running_runtime)
from shoal.sdk.common import RetryPolicy

if TYPE_CHECKING:
    from shoal.sdk._runtime import WorkflowRuntime

__all__ = [
    "defn", "run", "init", "signal", "query", "update",
    "set_query_handler", "get_query_handler", "set_dynamic_query_handler",
    "get_dynamic_query_handler", "set_update_handler", "get_update_handler",
    "set_dynamic_update_handler", "get_dynamic_update_handler", "all_handlers_finished",
    "new_random", "upsert_memo", "memo_value",
    "WorkflowDefinition", "HandlerDefinition", "Info", "ActivityHandle",
    "ActivityCancellationType", "NondeterminismError",
    "execute_activity", "start_activity", "execute_activity_method", "start_activity_method",
    "execute_local_activity", "start_local_activity", "execute_local_activity_method",
    "start_local_activity_method", "info", "now", "time", "time_ns", "uuid4",
    "random", "wait_condition", "sleep", "in_workflow", "logger", "unsafe",
    "set_signal_handler", "get_signal_handler", "set_dynamic_signal_handler",
    "get_dynamic_signal_handler", "continue_as_new", "ContinueAsNewError", "patched",
    "deprecate_patch", "upsert_search_attributes", "memo", "start_child_workflow", "execute_child_workflow", "ChildWorkflowHandle",
    "ChildWorkflowCancellationType", "ParentClosePolicy", "get_external_workflow_handle",
    "ExternalWorkflowHandle",
]


class _NoArg:
    def __repr__(self) -> str:
        return "<no arg>"


_NO_ARG: Any = _NoArg()


def _runtime() -> WorkflowRuntime:
    return running_runtime()


def in_workflow() -> bool:
    """Whether the caller runs inside a workflow."""
    loop = asyncio.events._get_running_loop()
    return isinstance(loop, WorkflowLoop) and loop.shoal_runtime is not None


def info() -> Info:
    """The current workflow's ``Info``.

    Raises:
        RuntimeError: Called outside a workflow.
    """
    rt = _runtime()
    assert rt.info is not None, "info() before WorkflowExecutionStarted was applied"
    return rt.info


def now() -> datetime:
    """The current workflow time (UTC): the start time of the workflow task being run."""
    return _runtime().now()


def time() -> float:
    """``now()`` as seconds since the epoch (same as ``asyncio.get_running_loop().time()``)."""
    return _runtime().loop.time()


def time_ns() -> int:
    """``time()`` in integer nanoseconds."""
    return int(_runtime().loop.time() * 1_000_000_000)


def random() -> _random.Random:
    """A ``random.Random`` seeded from the run id: the same sequence on every replay."""
    return _runtime().random


def new_random() -> _random.Random:
    """A new ``random.Random`` seeded from ``random()``: deterministic, and independent of
    the workflow's own sequence once made."""
    return _random.Random(_runtime().random.getrandbits(64))


def uuid4() -> uuid.UUID:
    """A version-4 UUID drawn from ``random()``: stable across replays."""
    return uuid.UUID(int=_runtime().random.getrandbits(128), version=4)


def _activity_name_and_result(activity: Any, result_type: Any) -> tuple[str, Any]:
    if isinstance(activity, str):
        return activity, result_type
    definition = getattr(activity, "__shoal_activity_definition__", None)
    if definition is None:
        raise TypeError(
            f"activity {getattr(activity, '__qualname__', activity)!r} has no activity "
            "definition: decorate it with @activity.defn or pass its name as a string")
    if result_type is None:
        from shoal.sdk.common import type_hints_from_func

        _, result_type = type_hints_from_func(getattr(definition, "fn", None) or activity)
    return definition.name, result_type


# temporalio activity options that change nothing here (no worker versioning, no
# priorities, local activities run as normal ones); accepted so ported code runs.
_IGNORED_ACTIVITY_OPTIONS = frozenset({"versioning_intent", "priority", "local_retry_threshold"})


def start_activity(
    activity: Union[Callable[..., Any], str], arg: Any = _NO_ARG, *, args: Sequence[Any] = (),
    task_queue: Optional[str] = None,
    schedule_to_close_timeout: Optional[timedelta] = None,
    schedule_to_start_timeout: Optional[timedelta] = None,
    start_to_close_timeout: Optional[timedelta] = None,
    heartbeat_timeout: Optional[timedelta] = None,
    retry_policy: Optional[RetryPolicy] = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: Optional[str] = None, result_type: Optional[type] = None,
    summary: Optional[str] = None, **_ignored: Any,
) -> ActivityHandle[Any]:
    """Schedule an activity and return a handle (an ``asyncio.Task``) for its result.

    Args:
        activity: An ``@activity.defn`` function (its name and return type are used) or
            an activity type name.
        arg: The single argument; use ``args`` for several.
        task_queue: Where the activity runs; default the workflow's task queue.
        schedule_to_close_timeout, schedule_to_start_timeout, start_to_close_timeout,
        heartbeat_timeout: Timeouts; one of schedule-to-close / start-to-close is required.
        retry_policy: Server-side retries; None: the server's default policy.
        cancellation_type: What cancelling the handle does; see ``ActivityCancellationType``.
        activity_id: Defaults to the run's command sequence number.
        result_type: Decode the result as this type (needed for string activity names).
        summary: Accepted for compatibility and ignored.

    Raises:
        ValueError: Neither schedule-to-close nor start-to-close timeout given, or both
            ``arg`` and ``args``.
        TypeError: ``activity`` is a function not decorated with ``@activity.defn``.
    """
    del summary
    unknown = set(_ignored) - _IGNORED_ACTIVITY_OPTIONS
    if unknown:
        raise TypeError(f"unexpected activity option(s): {sorted(unknown)}")
    if arg is not _NO_ARG:
        if args:
            raise ValueError("pass either arg or args, not both")
        args = [arg]
    if not schedule_to_close_timeout and not start_to_close_timeout:
        raise ValueError(
            "Activity must have start_to_close_timeout or schedule_to_close_timeout")
    name, rtype = _activity_name_and_result(activity, result_type)
    return _runtime().start_activity(
        activity_type=name, args=list(args), task_queue=task_queue,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout, heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy, activity_id=activity_id, result_type=rtype,
        cancellation_type=cancellation_type)


async def execute_activity(activity: Union[Callable[..., Any], str], arg: Any = _NO_ARG,
                           **kwargs: Any) -> Any:
    """``start_activity`` and wait for the result; takes the same arguments.

    Raises:
        shoal.exceptions.ActivityError: The activity failed or timed out for good.
    """
    return await start_activity(activity, arg, **kwargs)


# temporalio's variants for activities defined as methods, and local activities. Local
# activities run as ordinary (server-scheduled) activities here: same results, one more
# round trip; ``local_retry_threshold`` and similar options are accepted and ignored.
start_activity_method = start_activity
execute_activity_method = execute_activity
start_local_activity = start_activity
execute_local_activity = execute_activity
start_local_activity_method = start_activity
execute_local_activity_method = execute_activity


async def wait_condition(fn: Callable[[], bool], *,
                         timeout: Optional[Union[timedelta, float]] = None,
                         timeout_summary: Optional[str] = None) -> None:
    """Wait until ``fn()`` returns True; it is re-checked whenever the workflow is idle.

    Args:
        fn: A side-effect-free predicate over workflow state.
        timeout: Give up after this long (a durable timer).

    Raises:
        asyncio.TimeoutError: The timeout elapsed first.
    """
    del timeout_summary
    rt = _runtime()
    fut = rt.loop.create_future()
    rt.add_condition(fn, fut)
    if timeout is None:
        await fut
        return
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    await asyncio.wait_for(fut, seconds)


async def sleep(duration: Union[float, timedelta], *, summary: Optional[str] = None) -> None:
    """A durable sleep (same as ``asyncio.sleep`` inside a workflow)."""
    del summary
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    await asyncio.sleep(seconds)


def set_signal_handler(name: str, handler: Optional[Callable[..., Any]]) -> None:
    """Handle signal ``name`` with ``handler`` (sync or async); None removes the handler.

    Signals that arrived before any handler covered them are delivered to it now, in order.
    """
    _runtime().interactions.set_signal_handler(name, handler)


def get_signal_handler(name: str) -> Optional[Callable[..., Any]]:
    """The handler currently set for signal ``name`` (decorated or set at run time)."""
    return _runtime().interactions.get_signal_handler(name)


def set_dynamic_signal_handler(handler: Optional[Callable[..., Any]]) -> None:
    """Handle every signal without a handler of its own: called as ``handler(name, args)``."""
    _runtime().interactions.set_signal_handler(None, handler)


def get_dynamic_signal_handler() -> Optional[Callable[..., Any]]:
    """The catch-all signal handler, if any."""
    return _runtime().interactions.get_signal_handler(None)


def set_query_handler(name: Optional[str], handler: Optional[Callable[..., Any]]) -> None:
    """Answer query ``name`` with ``handler`` (a plain function); None removes it. ``name``
    None sets the dynamic handler, called as ``handler(name, args)``."""
    _runtime().interactions.set_query_handler(name, handler)


def get_query_handler(name: str) -> Optional[Callable[..., Any]]:
    """The handler for query ``name`` (set at run time, else decorated), if any."""
    return _runtime().interactions.get_query_handler(name)


def set_dynamic_query_handler(handler: Optional[Callable[..., Any]]) -> None:
    """Answer every query without a handler of its own: ``handler(name, args)``."""
    _runtime().interactions.set_query_handler(None, handler)


def get_dynamic_query_handler() -> Optional[Callable[..., Any]]:
    """The catch-all query handler set at run time, if any."""
    return _runtime().interactions.get_query_handler(None)


def set_update_handler(name: Optional[str], handler: Optional[Callable[..., Any]], *,
                       validator: Optional[Callable[..., None]] = None,
                       description: Optional[str] = None) -> None:
    """Handle update ``name`` with ``handler`` (sync or async), after ``validator`` (which
    rejects an update by raising); None removes it. ``name`` None: the dynamic handler,
    called as ``handler(name, args)``."""
    del description
    _runtime().interactions.set_update_handler(name, handler, validator)


def get_update_handler(name: str) -> Optional[Callable[..., Any]]:
    """The handler for update ``name`` (set at run time, else decorated), if any."""
    return _runtime().interactions.get_update_handler(name)


def set_dynamic_update_handler(handler: Optional[Callable[..., Any]], *,
                               validator: Optional[Callable[..., None]] = None,
                               description: Optional[str] = None) -> None:
    """Handle every update without a handler of its own: ``handler(name, args)``."""
    del description
    _runtime().interactions.set_update_handler(None, handler, validator)


def get_dynamic_update_handler() -> Optional[Callable[..., Any]]:
    """The catch-all update handler set at run time, if any."""
    return _runtime().interactions.get_update_handler(None)


def all_handlers_finished() -> bool:
    """No signal or update handler of this run is still running. Temporal's idiom, before
    the run returns: ``await workflow.wait_condition(workflow.all_handlers_finished)``."""
    return _runtime().interactions.all_handlers_finished()


def continue_as_new(
    arg: Any = _NO_ARG, *, args: Sequence[Any] = (), workflow: Union[None, str, Callable[..., Any]] = None,
    task_queue: Optional[str] = None, run_timeout: Optional[timedelta] = None,
    task_timeout: Optional[timedelta] = None, retry_policy: Optional[RetryPolicy] = None,
    memo: Optional[Mapping[str, Any]] = None, search_attributes: Optional[Mapping[str, Any]] = None,
    **_ignored: Any,
) -> NoReturn:
    """Close this run and start a new one of the same workflow id with fresh history.

    Raises ``ContinueAsNewError`` (a ``BaseException``); let it escape the run method. The
    new run gets ``arg``/``args``; the other options default to this run's.
    """
    if arg is not _NO_ARG:
        if args:
            raise ValueError("pass either arg or args, not both")
        args = [arg]
    name = None if workflow is None else _resolve_workflow_ref(workflow)[0]
    rt = _runtime()
    raise ContinueAsNewError(rt.interactions.continue_as_new_command(
        args=args, workflow=name, task_queue=task_queue, run_timeout=run_timeout,
        task_timeout=task_timeout, retry_policy=retry_policy, memo=memo,
        search_attributes=search_attributes))


def upsert_search_attributes(attributes: Mapping[str, Any]) -> None:
    """Add or change this run's search attributes (``None`` removes one); ``list_workflows``
    queries see them once this workflow task completes."""
    _runtime().upsert_search_attributes(dict(attributes))


def memo() -> Mapping[str, Any]:
    """The run's memo, decoded: what it was started with, and ``upsert_memo``'s changes."""
    return info().memo


def memo_value(key: str, default: Any = _NO_ARG, *, type_hint: Optional[type] = None) -> Any:
    """One memo field (``KeyError`` if absent and no ``default``)."""
    del type_hint
    found = info().memo
    if key in found:
        return found[key]
    if default is _NO_ARG:
        raise KeyError(f"memo has no key {key!r}")
    return default


def upsert_memo(updates: Mapping[str, Any]) -> None:
    """Add, change or (with ``None``) remove memo fields. Describe and list show the new
    memo once this workflow task completes; ``memo()`` shows it at once."""
    _runtime().upsert_memo(dict(updates))


def patched(id: str) -> bool:
    """Whether this run takes the patched (new) branch of change ``id``.

    True in new runs and in replays of runs that took it; False in replays of runs that
    started before the patch existed. Once a run answered, the answer never changes.
    """
    return _runtime().interactions.patched(id)


def deprecate_patch(id: str) -> None:
    """Mark patch ``id`` as the only branch left: runs from before the patch have finished."""
    _runtime().interactions.patched(id, deprecated=True)


# --- child workflows and other workflows ------------------------------------------------


class ChildWorkflowHandle(asyncio.Task, Generic[ReturnType]):  # type: ignore[type-arg]
    """A started child: an ``asyncio.Task`` for its result (``ChildWorkflowError`` if it
    failed, was cancelled, timed out or was terminated). ``cancel()`` asks the child to
    cancel, per the ``cancellation_type`` it was started with."""

    id: str
    first_execution_run_id: str

    async def signal(self, signal: Union[str, Callable[..., Any]], arg: Any = _NO_ARG, *,
                     args: Sequence[Any] = ()) -> None:
        """Signal the child (recorded in both histories before this returns)."""
        await _signal_external(self.id, "", signal, arg, args, child_only=True)


class ExternalWorkflowHandle:
    """Another workflow, to signal or cancel from this one (``get_external_workflow_handle``)."""

    def __init__(self, workflow_id: str, run_id: Optional[str]) -> None:
        self.id, self.run_id = workflow_id, run_id

    async def signal(self, signal: Union[str, Callable[..., Any]], arg: Any = _NO_ARG, *,
                     args: Sequence[Any] = ()) -> None:
        """Signal it. Raises ``ApplicationError`` if it does not exist or is closed."""
        await _signal_external(self.id, self.run_id or "", signal, arg, args, child_only=False)

    async def cancel(self) -> None:
        """Ask it to cancel. Raises ``ApplicationError`` if it does not exist or is closed."""
        from shoal import wire

        await _runtime().children.external_command(wire.RequestCancelExternalWorkflowExecutionCommand(
            workflow_id=self.id, run_id=self.run_id or ""), f"cancel workflow {self.id!r}")


def get_external_workflow_handle(workflow_id: str, *, run_id: Optional[str] = None) -> ExternalWorkflowHandle:
    """A handle to signal or cancel another workflow by id."""
    _runtime()
    return ExternalWorkflowHandle(workflow_id, run_id)


async def _signal_external(workflow_id: str, run_id: str, signal: Any, arg: Any,
                           args: Sequence[Any], *, child_only: bool) -> None:
    from shoal import wire

    name = signal if isinstance(signal, str) else getattr(signal, "__shoal_signal_definition__").name
    values = list(args) if arg is _NO_ARG else [arg]
    rt = _runtime()
    await rt.children.external_command(wire.SignalExternalWorkflowExecutionCommand(
        workflow_id=workflow_id, run_id=run_id, signal_name=name,
        input=rt.converter.to_payloads(values), child_workflow_only=child_only,
    ), f"signal workflow {workflow_id!r}")


async def start_child_workflow(
    workflow: Any, arg: Any = _NO_ARG, *, args: Sequence[Any] = (), id: Optional[str] = None,
    task_queue: Optional[str] = None, result_type: Optional[type] = None,
    cancellation_type: ChildWorkflowCancellationType = ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: Optional[timedelta] = None, run_timeout: Optional[timedelta] = None,
    task_timeout: Optional[timedelta] = None, id_reuse_policy: int = 1,
    retry_policy: Optional[RetryPolicy] = None, memo: Optional[Mapping[str, Any]] = None,
    search_attributes: Optional[Mapping[str, Any]] = None, **_ignored: Any,
) -> ChildWorkflowHandle[Any]:
    """Start a child workflow; returns once it started, with a handle for its result.

    ``id`` defaults to a deterministic uuid4; the task queue to this workflow's.

    Raises:
        WorkflowAlreadyStartedError: a workflow with that id is running.
    """
    if arg is not _NO_ARG:
        if args:
            raise ValueError("pass either arg or args, not both")
        args = [arg]
    name, ret_type = _resolve_workflow_ref(workflow)
    rt = _runtime()
    child = await rt.children.start_child(
        workflow_type=name, args=list(args), workflow_id=id or str(uuid4()), task_queue=task_queue,
        result_type=result_type or ret_type, execution_timeout=execution_timeout,
        run_timeout=run_timeout, task_timeout=task_timeout, id_reuse_policy=int(id_reuse_policy),
        retry_policy=retry_policy, parent_close_policy=ParentClosePolicy(parent_close_policy),
        cancellation_type=ChildWorkflowCancellationType(cancellation_type),
        memo=dict(memo) if memo else None,
        search_attributes=dict(search_attributes) if search_attributes else None)
    handle: ChildWorkflowHandle[Any] = ChildWorkflowHandle(
        rt.children.child_result(child), loop=rt.loop, name=f"child:{child.workflow_id}")
    handle.id, handle.first_execution_run_id = child.workflow_id, child.run_id
    return handle


async def execute_child_workflow(workflow: Any, arg: Any = _NO_ARG, **kwargs: Any) -> Any:
    """``start_child_workflow`` and wait for the child's result; same arguments.

    Raises:
        ChildWorkflowError: the child failed, was cancelled, timed out or was terminated.
    """
    return await (await start_child_workflow(workflow, arg, **kwargs))


class _Unsafe:
    """``workflow.unsafe``: escape hatches, as temporalio's module of that name."""

    @staticmethod
    def is_replaying() -> bool:
        """True while the current workflow task is a replay of recorded history."""
        return _runtime().replaying

    @staticmethod
    @contextlib.contextmanager
    def imports_passed_through() -> Iterator[None]:
        """No-op: shoal has no import sandbox (kept so temporalio code imports unchanged)."""
        yield

    @staticmethod
    @contextlib.contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        """No-op: shoal has no sandbox."""
        yield

    @staticmethod
    def in_sandbox() -> bool:
        """Always False: shoal has no sandbox."""
        return False


unsafe = _Unsafe()


class LoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``workflow.logger``: adds the run's identity to records; silent while replaying."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        loop = asyncio.events._get_running_loop()
        runtime = getattr(loop, "shoal_runtime", None) if isinstance(loop, WorkflowLoop) else None
        if runtime is not None and runtime.replaying:
            return False
        return super().isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        if in_workflow():
            rt = _runtime()
            fields = {"workflow_id": rt.workflow_id, "run_id": rt.run_id,
                      "namespace": rt.namespace, "task_queue": rt.task_queue}
            if rt.info is not None:
                fields.update(workflow_type=rt.info.workflow_type, attempt=rt.info.attempt)
            kwargs["extra"] = {**(kwargs.get("extra") or {}), "workflow_info": fields}
            msg = f"{msg} ({fields})"
        return msg, kwargs


logger = LoggerAdapter(logging.getLogger("shoal.workflow"), None)


def _resolve_workflow_ref(workflow: Any) -> tuple[str, Any]:
    """Workflow type name and result type hint of what a client passes as ``workflow``.

    Accepts a ``@workflow.run`` method (``MyWorkflow.run``), a ``@workflow.defn`` class, or
    a type name (result then decodes untyped unless the caller gives ``result_type``).

    Raises:
        TypeError: A function or class that is not part of a workflow definition.
    """
    if isinstance(workflow, str):
        return workflow, None
    if isinstance(workflow, type):
        definition = WorkflowDefinition.from_class(workflow)
    else:
        definition = WorkflowDefinition.from_run_fn(workflow)
    return definition.name, definition.ret_type
