"""What reaches a running workflow from outside, and how it closes itself other than by returning.

Owns (as ``Interactions``, a part the ``WorkflowRuntime`` composes and reaches through
``RuntimeCore``): signal delivery to ``@workflow.signal`` handlers and handlers set at run
time, buffering signals that have no handler yet; queries; updates (validate, accept or
reject, run the handler); ``workflow.continue_as_new``; and patch markers
(``workflow.patched`` / ``deprecate_patch``). Cancel requests are the runtime's (they act
on the run method's task). Must not: do I/O, walk history (the instance does), or import
``_runtime`` or ``workflow`` (they import this).

Ordering follows temporalio: within one workflow task, signal handlers start before the
run method does, so a handler may prepare state the first run step reads; handlers and the
run method then interleave at their awaits, in arrival order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Mapping, Optional, Sequence

from shoal import wire
from shoal.sdk import exceptions
from shoal.sdk.converter import encode_search_attributes
from shoal.sdk._definition import _VALIDATOR_ATTR, HandlerDefinition
from shoal.sdk._workflow_types import RuntimeCore
from shoal.sdk.common import RetryPolicy

log = logging.getLogger(__name__)

PATCH_MARKER = "core_patch"  # Temporal's marker name, so histories read the same


class ContinueAsNewError(BaseException):
    """Raised by ``workflow.continue_as_new``; the run method must let it escape.

    A ``BaseException`` (as temporalio's) so ``except Exception`` in workflow code does not
    swallow it.
    """

    def __init__(self, command: wire.ContinueAsNewWorkflowExecutionCommand) -> None:
        super().__init__("continue as new")
        self.command = command


class QueryError(Exception):
    """A query could not be answered; the message goes back to the asker as is."""


@dataclass(slots=True)
class _Handler:
    fn: Callable[..., Any]  # bound to the workflow object (or a plain callable)
    arg_types: Optional[list[Any]]
    dynamic: bool  # called as fn(name, *args)


class Interactions:
    """Signals, queries, updates, continue-as-new and patches of one run; the
    ``WorkflowRuntime`` owns one.

    Args:
        core: The run's runtime (the workflow object, commands, the converter, the loop).
    """

    def __init__(self, core: RuntimeCore) -> None:
        self._core = core
        self._signal_handlers: dict[Optional[str], _Handler] = {}
        self._buffered_signals: list[tuple[str, list[bytes]]] = []
        self._patches: dict[str, bool] = {}  # patch id -> what patched() answered (memo)
        self._updates_seen: set[str] = set()
        # Handlers set at run time (workflow.set_query_handler ...); they win over the
        # class's decorated ones of the same name. Update entries hold (handler, validator).
        self._query_handlers: dict[Optional[str], _Handler] = {}
        self._update_handlers: dict[Optional[str], tuple[_Handler, Optional[Callable[..., Any]]]] = {}
        self._running_handlers = 0  # signal and update handler tasks not yet finished
        # Patch ids whose markers history holds up to the end of the task being replayed.
        self.recorded_patches: set[str] = set()

    def bind_handlers(self, obj: Any) -> None:
        """Bind the class's ``@workflow.signal`` methods to the new workflow object."""
        for name, hd in self._core.defn.signals.items():
            self._signal_handlers[name] = _bound(hd, obj)

    # --- signals -------------------------------------------------------------------------

    def on_signal(self, a: wire.WorkflowExecutionSignaledAttributes) -> None:
        handler = self._signal_handlers.get(a.signal_name) or self._signal_handlers.get(None)
        if handler is None:
            # No handler yet: keep it until one is set (temporalio buffers the same way).
            self._buffered_signals.append((a.signal_name, list(a.input)))
            return
        self._deliver_signal(handler, a.signal_name, list(a.input))

    def _deliver_signal(self, handler: _Handler, name: str,
                        payloads: list[bytes]) -> None:
        try:
            args = self._core.converter.from_payloads(payloads, handler.arg_types)
        except Exception as exc:
            # As temporalio: a signal whose arguments do not decode is dropped, not fatal.
            log.warning("dropping signal %r of workflow_id=%s: its arguments do not decode: %s",
                        name, self._core.workflow_id, exc)
            return
        if handler.dynamic:
            args = [name, args]
        self._core.loop.create_task(self._run_handler(handler.fn, args), name=f"signal:{name}")

    async def _run_handler(self, fn: Callable[..., Any], args: list[Any]) -> None:
        self._running_handlers += 1
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                await result
        except ContinueAsNewError as can:
            self._core.add_command(can.command)
        except asyncio.CancelledError:
            pass  # the run is being torn down or cancelled; the run method decides
        except Exception as exc:
            self._core.settle_failure(exc)
        finally:
            self._running_handlers -= 1

    def all_handlers_finished(self) -> bool:
        """``workflow.all_handlers_finished``: no signal or update handler is still running
        (wait for it before the run returns, so no handler's work is cut off)."""
        return self._running_handlers == 0

    def set_signal_handler(self, name: Optional[str],
                           fn: Optional[Callable[..., Any]]) -> None:
        """``workflow.set_signal_handler``: set (or with None remove) a handler; buffered
        signals it now covers are delivered in arrival order."""
        if fn is None:
            self._signal_handlers.pop(name, None)
            return
        handler = _Handler(fn=fn, arg_types=None if name is None else _arg_types(fn), dynamic=name is None)
        self._signal_handlers[name] = handler
        keep: list[tuple[str, list[bytes]]] = []
        for sig_name, payloads in self._buffered_signals:
            if name is None or sig_name == name:
                self._deliver_signal(handler, sig_name, payloads)
            else:
                keep.append((sig_name, payloads))
        self._buffered_signals = keep

    def get_signal_handler(self, name: Optional[str]) -> Optional[Callable[..., Any]]:
        handler = self._signal_handlers.get(name)
        return None if handler is None else handler.fn

    # --- continue-as-new -----------------------------------------------------------------

    def continue_as_new_command(
        self, *, args: Sequence[Any], workflow: Optional[str],
        task_queue: Optional[str], run_timeout: Optional[timedelta],
        task_timeout: Optional[timedelta], retry_policy: Optional[RetryPolicy],
        memo: Optional[Mapping[str, Any]], search_attributes: Optional[Mapping[str, Any]],
    ) -> wire.ContinueAsNewWorkflowExecutionCommand:
        conv = self._core.converter
        return wire.ContinueAsNewWorkflowExecutionCommand(
            workflow_type=workflow or "", task_queue=task_queue or "",
            input=conv.to_payloads(list(args)),
            workflow_run_timeout_s=None if run_timeout is None else run_timeout.total_seconds(),
            workflow_task_timeout_s=None if task_timeout is None else task_timeout.total_seconds(),
            retry_policy=None if retry_policy is None else retry_policy.to_wire(),
            memo=None if memo is None else {k: conv.to_payloads([v])[0] for k, v in memo.items()},
            search_attributes=None if search_attributes is None else encode_search_attributes(
                search_attributes),
        )

    # --- queries -------------------------------------------------------------------------

    def run_query(self, name: str, payloads: list[bytes]) -> list[bytes]:
        """Run query handler ``name`` on the current state and encode its answer.

        Raises:
            QueryError: no such handler, the run has not started, the handler is async,
                raised, or tried to change the workflow (start an activity, a timer ...).
        """
        core = self._core
        if core.workflow_object is None:
            raise QueryError("the workflow has not completed its first workflow task yet; "
                             "query again shortly")
        handler = _find(self._query_handlers, core.defn.queries, name, core.workflow_object)
        if handler is None:
            known = sorted({*core.defn.queries, *self._query_handlers} - {None})
            raise QueryError(f"workflow {core.defn.name!r} has no query handler {name!r} "
                             f"(known queries: {known})")
        try:
            args = core.converter.from_payloads(payloads, handler.arg_types)
        except Exception as exc:
            raise QueryError(f"the arguments of query {name!r} do not decode: {exc}") from exc
        commands_before = len(core.commands)
        try:
            with core.loop.entered():
                result = handler.fn(name, args) if handler.dynamic else handler.fn(*args)
        except Exception as exc:
            raise QueryError(f"query handler {name!r} raised {type(exc).__name__}: {exc}") from exc
        finally:
            produced = core.commands[commands_before:]
            del core.commands[commands_before:]
        if inspect.isawaitable(result):
            if hasattr(result, "close"):
                result.close()
            raise QueryError(f"query handler {name!r} is async; query handlers must be plain functions")
        if produced:
            raise QueryError(f"query handler {name!r} tried to change the workflow; queries are read-only")
        return core.converter.to_payloads([result])

    # --- updates -------------------------------------------------------------------------

    def on_update(self, request: wire.UpdateRequest) -> None:
        """Validate and accept (or reject) an update, then run its handler as a task.

        Replays only see accepted updates, and skip the validator (as temporalio): it ran
        when the update was first delivered, and its verdict is in history.
        """
        core = self._core
        uid = request.update_id
        if uid in self._updates_seen:
            return  # redelivered (the task was retried, or the request was re-sent)
        self._updates_seen.add(uid)
        found = self._find_update(request.name)
        problem: Optional[BaseException] = None
        args: list[Any] = []
        if core.workflow_object is None:
            problem = exceptions.ApplicationError("the workflow has not started yet", type="UpdateRejected")
        elif found is None:
            known = sorted({*core.defn.updates, *self._update_handlers} - {None})
            problem = exceptions.ApplicationError(
                f"workflow {core.defn.name!r} has no update handler {request.name!r} (known updates: {known})",
                type="UpdateNotFound")
        else:
            handler, validator = found
            try:
                args = core.converter.from_payloads(list(request.input), handler.arg_types)
                if handler.dynamic:
                    args = [request.name, args]
                if validator is not None and not core.replaying:
                    with core.loop.entered():
                        validator(*args)
            except Exception as exc:
                problem = exc
        if problem is not None:
            if not core.replaying:
                core.add_command(wire.RejectUpdateCommand(
                    update_id=uid, failure=exceptions.error_to_failure(problem, core.converter)))
            return
        core.add_command(wire.AcceptUpdateCommand(request=request))
        assert found is not None
        core.loop.create_task(self._run_update(uid, found[0].fn, args),
                              name=f"update:{request.name}")

    def _find_update(self, name: str) -> Optional[tuple[_Handler, Optional[Callable[..., Any]]]]:
        """The update handler for ``name`` and its validator, both bound."""
        obj = self._core.workflow_object
        if name in self._update_handlers:
            return self._update_handlers[name]
        hd = self._core.defn.updates.get(name)
        if hd is None and None in self._update_handlers:
            return self._update_handlers[None]
        hd = hd or self._core.defn.updates.get(None)
        if hd is None:
            return None
        validator = getattr(hd.fn, _VALIDATOR_ATTR, None)
        return _bound(hd, obj), None if validator is None else validator.__get__(obj)

    # --- handlers set at run time ---------------------------------------------------------

    def set_query_handler(self, name: Optional[str], fn: Optional[Callable[..., Any]]) -> None:
        """``workflow.set_query_handler`` (``name`` None: the dynamic one); None removes."""
        if fn is None:
            self._query_handlers.pop(name, None)
        else:
            self._query_handlers[name] = _plain(name, fn)

    def get_query_handler(self, name: Optional[str]) -> Optional[Callable[..., Any]]:
        handler = _find(self._query_handlers, self._core.defn.queries, name,
                        self._core.workflow_object, fallback=False)
        return None if handler is None else handler.fn

    def set_update_handler(self, name: Optional[str], fn: Optional[Callable[..., Any]],
                           validator: Optional[Callable[..., Any]] = None) -> None:
        """``workflow.set_update_handler`` (``name`` None: the dynamic one); None removes."""
        if fn is None:
            self._update_handlers.pop(name, None)
        else:
            self._update_handlers[name] = (_plain(name, fn), validator)

    def get_update_handler(self, name: Optional[str]) -> Optional[Callable[..., Any]]:
        if name in self._update_handlers:
            return self._update_handlers[name][0].fn
        hd = self._core.defn.updates.get(name)
        return None if hd is None else hd.fn.__get__(self._core.workflow_object)

    async def _run_update(self, uid: str, fn: Callable[..., Any], args: list[Any]) -> None:
        self._running_handlers += 1
        try:
            await self._run_update_body(uid, fn, args)
        finally:
            self._running_handlers -= 1

    async def _run_update_body(self, uid: str, fn: Callable[..., Any], args: list[Any]) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            outcome = wire.UpdateOutcome(result=self._core.converter.to_payloads([result]))
        except ContinueAsNewError as can:
            self._core.add_command(can.command)
            return
        except asyncio.CancelledError:
            return
        except Exception as exc:
            if not isinstance(exc, (exceptions.FailureError, *self._core.defn.failure_exception_types)):
                self._core.task_failure = exc  # a bug: retry the task, as temporalio does
                return
            outcome = wire.UpdateOutcome(failure=exceptions.error_to_failure(exc, self._core.converter))
        self._core.add_command(wire.CompleteUpdateCommand(update_id=uid, outcome=outcome))

    # --- patches -------------------------------------------------------------------------

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        """``workflow.patched``: True on new code paths, and in replays that recorded it.

        The first answer for an id holds for the rest of the run (a replay must not switch
        branches halfway). A True answer records a ``core_patch`` marker (once per id).
        """
        known = self._patches.get(patch_id)
        if known is not None:
            return known
        use_new = not self._core.replaying or patch_id in self.recorded_patches
        if deprecated and not use_new:
            # deprecate_patch on a replay without the marker: old and new code agree.
            return True
        self._patches[patch_id] = use_new
        if use_new:
            conv = self._core.converter
            self._core.add_command(wire.RecordMarkerCommand(marker_name=PATCH_MARKER, details={
                "patch_id": conv.to_payloads([patch_id]),
                "deprecated": conv.to_payloads([deprecated]),
            }))
        return use_new


def patch_id_of(event: wire.HistoryEvent, converter: Any) -> Optional[str]:
    """The patch id of a ``core_patch`` MarkerRecorded event, else None."""
    a = event.attributes
    if not isinstance(a, wire.MarkerRecordedAttributes) or a.marker_name != PATCH_MARKER:
        return None
    try:
        (value,) = converter.from_payloads(a.details.get("patch_id", [])[:1], [str])
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _bound(hd: HandlerDefinition, obj: Any) -> _Handler:
    dynamic = hd.name is None  # called as fn(name, args): its arguments decode untyped
    return _Handler(fn=hd.fn.__get__(obj), arg_types=None if dynamic else hd.arg_types, dynamic=dynamic)


def _plain(name: Optional[str], fn: Callable[..., Any]) -> _Handler:
    """A handler set at run time: a plain callable (dynamic ones take ``(name, args)``)."""
    return _Handler(fn=fn, arg_types=None if name is None else _arg_types(fn), dynamic=name is None)


def _find(set_at_run_time: dict[Optional[str], _Handler], declared: dict[Optional[str], HandlerDefinition],
          name: Optional[str], obj: Any, *, fallback: bool = True) -> Optional[_Handler]:
    """The handler for ``name``: one set at run time, else the class's decorated one, else
    (``fallback``) the dynamic one set at run time, else the class's dynamic one."""
    if name in set_at_run_time:
        return set_at_run_time[name]
    hd = declared.get(name)
    if hd is not None:
        return _bound(hd, obj)
    if not fallback:
        return None
    if None in set_at_run_time:
        return set_at_run_time[None]
    hd = declared.get(None)
    return None if hd is None else _bound(hd, obj)


def _arg_types(fn: Callable[..., Any]) -> Optional[list[Any]]:
    from shoal.sdk.common import type_hints_from_func

    try:
        hints, _ = type_hints_from_func(fn)
    except Exception:
        return None
    return hints
