"""Activities: the ``@activity.defn`` decorator and what a running activity can ask.

Owns: ``ActivityDefinition`` (name, function, argument and result types), ``defn``, and the
per-attempt context behind ``activity.info()`` (a context variable, so it works in trio tasks
and in the worker threads that run plain functions). Must not: talk to the node (the worker
does).
"""

from __future__ import annotations

import contextvars
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_ATTR = "__shoal_activity_definition__"


@dataclass(frozen=True)
class ActivityDefinition:
    """What the worker needs to run an activity: its name, function and types."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: list[Any]
    ret_type: Any

    @staticmethod
    def from_callable(fn: Callable[..., Any]) -> ActivityDefinition:
        """The definition attached by ``@activity.defn``.

        Raises:
            TypeError: ``fn`` was not decorated with ``@activity.defn``.
        """
        defn = getattr(fn, _ATTR, None)
        if defn is None:
            raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} is not an @activity.defn function")
        return defn


def _types_of(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: decode untyped, as temporalio does
        hints = {}
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [hints.get(p.name) for p in params], hints.get("return")


def defn(fn: F | None = None, *, name: str | None = None, no_thread_cancel_exception: bool = False) -> Any:
    """Mark a function (async, or plain to run in a worker thread) as an activity.

    Args:
        name: the activity type name; the function's ``__name__`` by default.
        no_thread_cancel_exception: accepted for temporalio compatibility; unused.
    """

    def wrap(f: F) -> F:
        arg_types, ret_type = _types_of(f)
        setattr(f, _ATTR, ActivityDefinition(
            name=name or f.__name__, fn=f, is_async=inspect.iscoroutinefunction(f),
            arg_types=arg_types, ret_type=ret_type,
        ))
        return f

    return wrap(fn) if fn is not None else wrap


@dataclass(frozen=True)
class Info:
    """The running attempt, as ``temporalio.activity.Info``."""

    activity_id: str
    activity_type: str
    attempt: int
    task_token: bytes
    task_queue: str
    workflow_id: str
    workflow_run_id: str
    workflow_type: str
    workflow_namespace: str
    scheduled_time: datetime
    current_attempt_scheduled_time: datetime
    started_time: datetime
    schedule_to_close_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    heartbeat_details: list[Any]
    is_local: bool = False


@dataclass
class _Context:
    """The running attempt: its info, how to heartbeat, and whether it is being cancelled.

    ``heartbeat`` and ``is_cancelled`` are set by the worker and are safe to call from the
    worker thread a plain-function activity runs in.
    """

    info: Info
    heartbeat: Callable[[list[Any]], None] = lambda details: None
    is_cancelled: Callable[[], bool] = lambda: False


class CompleteAsyncError(BaseException):
    """Raised by ``raise_complete_async``: the worker reports nothing; someone completes the
    activity later with ``client.get_async_activity_handle(task_token=...)``."""


_current: contextvars.ContextVar[_Context] = contextvars.ContextVar("shoal_activity")


def _set_context(ctx: _Context) -> contextvars.Token[_Context]:
    return _current.set(ctx)


def _reset_context(token: contextvars.Token[_Context]) -> None:
    _current.reset(token)


def in_activity() -> bool:
    """Whether the caller runs inside an activity attempt."""
    return _current.get(None) is not None


def info() -> Info:
    """The running attempt's info.

    Raises:
        RuntimeError: called outside an activity.
    """
    ctx = _current.get(None)
    if ctx is None:
        raise RuntimeError("Not in activity context")
    return ctx.info


def _context() -> _Context:
    ctx = _current.get(None)
    if ctx is None:
        raise RuntimeError("Not in activity context")
    return ctx


def heartbeat(*details: Any) -> None:
    """Tell the node the attempt is alive, with progress ``details``.

    Cheap to call often: the worker sends at most one heartbeat per throttle interval (80 %
    of the heartbeat timeout, else 30 s), always with the latest details. A retried attempt
    reads the last recorded details from ``info().heartbeat_details``. A heartbeat's answer
    is how a cancel request reaches a started activity.
    """
    _context().heartbeat(list(details))


def is_cancelled() -> bool:
    """Whether the workflow asked to cancel this activity (learned from a heartbeat answer).

    An ``async def`` activity is cancelled at its next ``await`` anyway; plain functions
    (run in a thread) should check this and stop.
    """
    return _context().is_cancelled()


def raise_complete_async() -> typing.NoReturn:
    """End this function without completing the activity; complete it later from anywhere
    with ``client.get_async_activity_handle(task_token=activity.info().task_token)``."""
    raise CompleteAsyncError()
