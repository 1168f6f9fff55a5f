"""Exceptions users see and raise (``shoal.exceptions``), named as ``temporalio.exceptions``.

Owns: the ``FailureError`` family (application, activity, timeout, cancelled, terminated,
server, child workflow), the enums they carry, and the two-way mapping between them and
the wire's ``Failure`` (type name, message, stack trace, details, cause chain). Must not:
know about the event loop, the client transport or trio.
"""

from __future__ import annotations

import asyncio
import traceback
from datetime import timedelta
from enum import IntEnum
from typing import Any, Optional, Sequence

from shoal import wire
from shoal.sdk.converter import DataConverter

__all__ = [
    "TemporalError",
    "ShoalSdkError",
    "FailureError",
    "ApplicationError",
    "CancelledError",
    "TerminatedError",
    "TimeoutType",
    "TimeoutError",
    "ServerError",
    "RetryState",
    "ActivityError",
    "ChildWorkflowError",
    "WorkflowAlreadyStartedError",
    "is_cancelled_exception",
    "error_to_failure",
    "failure_to_error",
]

# A cause chain deeper than this is cut: wire decoding refuses deep nesting (wire.LIST_DEPTH_MAX).
_CAUSE_DEPTH_MAX = 20


class TemporalError(Exception):
    """Base of every SDK error (temporalio's name; ``ShoalSdkError`` is the same class)."""

    @property
    def cause(self) -> Optional[BaseException]:
        """The ``__cause__`` of this error, if any."""
        return self.__cause__


ShoalSdkError = TemporalError


class FailureError(TemporalError):
    """An error that is (or becomes) a ``wire.Failure``; raising one in a workflow fails it.

    Attributes:
        message: The failure message without the class name.
        failure: The wire failure this error was decoded from, if it came from one.
    """

    def __init__(
        self, message: str, *, failure: Optional[wire.Failure] = None,
        exc_args: Optional[tuple] = None,
    ) -> None:
        super().__init__(*(exc_args or (message,)))
        self._message = message
        self._failure = failure

    @property
    def message(self) -> str:
        """The failure message."""
        return self._message

    @property
    def failure(self) -> Optional[wire.Failure]:
        """The wire failure this error was built from (None when raised locally)."""
        return self._failure


class ApplicationError(FailureError):
    """A user-raised failure, optionally typed, with details and a retry opinion.

    Args:
        message: What happened.
        *details: Values encoded with the data converter and decoded on the other side.
        type: A name for the error kind, matched against ``non_retryable_error_types``.
        non_retryable: True stops retries regardless of the retry policy.
        next_retry_delay: Overrides the retry policy's backoff for the next attempt.
    """

    def __init__(
        self, message: str, *details: Any, type: Optional[str] = None,
        non_retryable: bool = False, next_retry_delay: Optional[timedelta] = None,
    ) -> None:
        super().__init__(message)
        self._details = details
        self._type = type
        self._non_retryable = non_retryable
        self._next_retry_delay = next_retry_delay

    @property
    def details(self) -> Sequence[Any]:
        """The details given at construction (decoded, untyped, when from a failure)."""
        return self._details

    @property
    def type(self) -> Optional[str]:
        """The error type name."""
        return self._type

    @property
    def non_retryable(self) -> bool:
        """Whether retries are suppressed."""
        return self._non_retryable

    @property
    def next_retry_delay(self) -> Optional[timedelta]:
        """The backoff override for the next attempt, if any."""
        return self._next_retry_delay


class CancelledError(FailureError):
    """Work was cancelled."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        """Cancellation details."""
        return self._details


class TerminatedError(FailureError):
    """A workflow was terminated."""

    def __init__(self, message: str, *details: Any) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        """Termination details."""
        return self._details


class TimeoutType(IntEnum):
    """Which timeout elapsed (numbers as Temporal's ``TimeoutType``)."""

    START_TO_CLOSE = int(wire.TimeoutType.START_TO_CLOSE)
    SCHEDULE_TO_START = int(wire.TimeoutType.SCHEDULE_TO_START)
    SCHEDULE_TO_CLOSE = int(wire.TimeoutType.SCHEDULE_TO_CLOSE)
    HEARTBEAT = int(wire.TimeoutType.HEARTBEAT)


class TimeoutError(FailureError):
    """A timeout elapsed; ``last_heartbeat_details`` are the activity's last heartbeat."""

    def __init__(
        self, message: str, *, type: Optional[TimeoutType],
        last_heartbeat_details: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self._type = type
        self._last_heartbeat_details = last_heartbeat_details

    @property
    def type(self) -> Optional[TimeoutType]:
        """The kind of timeout."""
        return self._type

    @property
    def last_heartbeat_details(self) -> Sequence[Any]:
        """Details of the last heartbeat before the timeout."""
        return self._last_heartbeat_details


class ServerError(FailureError):
    """The server failed the work."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message)
        self._non_retryable = non_retryable

    @property
    def non_retryable(self) -> bool:
        """Whether retries are suppressed."""
        return self._non_retryable


class RetryState(IntEnum):
    """Why retries stopped (numbers as Temporal's ``RetryState``)."""

    IN_PROGRESS = int(wire.RetryState.IN_PROGRESS)
    NON_RETRYABLE_FAILURE = int(wire.RetryState.NON_RETRYABLE_FAILURE)
    TIMEOUT = int(wire.RetryState.TIMEOUT)
    MAXIMUM_ATTEMPTS_REACHED = int(wire.RetryState.MAXIMUM_ATTEMPTS_REACHED)
    RETRY_POLICY_NOT_SET = int(wire.RetryState.RETRY_POLICY_NOT_SET)
    INTERNAL_SERVER_ERROR = int(wire.RetryState.INTERNAL_SERVER_ERROR)
    CANCEL_REQUESTED = int(wire.RetryState.CANCEL_REQUESTED)


class ActivityError(FailureError):
    """An activity failed; ``cause`` is the ApplicationError / TimeoutError / ... behind it."""

    def __init__(
        self, message: str, *, scheduled_event_id: int, started_event_id: int, identity: str,
        activity_type: str, activity_id: str, retry_state: Optional[RetryState],
    ) -> None:
        super().__init__(message)
        self.scheduled_event_id = scheduled_event_id
        self.started_event_id = started_event_id
        self.identity = identity
        self.activity_type = activity_type
        self.activity_id = activity_id
        self.retry_state = retry_state


class ChildWorkflowError(FailureError):
    """A child workflow failed (declared for parity; child workflows come in a later issue)."""

    def __init__(
        self, message: str, *, namespace: str = "", workflow_id: str = "", run_id: str = "",
        workflow_type: str = "", initiated_event_id: int = 0, started_event_id: int = 0,
        retry_state: Optional[RetryState] = None,
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type = workflow_type
        self.initiated_event_id = initiated_event_id
        self.started_event_id = started_event_id
        self.retry_state = retry_state


class WorkflowAlreadyStartedError(FailureError):
    """A workflow with this id is already running (or its reuse policy forbids a new run)."""

    def __init__(self, workflow_id: str, workflow_type: str, *, run_id: Optional[str] = None):
        super().__init__("Workflow execution already started")
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id


def is_cancelled_exception(exception: BaseException) -> bool:
    """True for asyncio cancellation and for a failure caused by cancellation."""
    return (
        isinstance(exception, asyncio.CancelledError)
        or isinstance(exception, CancelledError)
        or (isinstance(exception, (ActivityError, ChildWorkflowError))
            and isinstance(exception.cause, CancelledError))
    )


# --------------------------------------------------------------------------------------
# Exception -> wire.Failure
# --------------------------------------------------------------------------------------


def error_to_failure(exc: BaseException, converter: Optional[DataConverter] = None,
                     *, _depth: int = 0) -> wire.Failure:
    """Encode an exception and its ``__cause__`` chain as a ``wire.Failure``.

    A non-``FailureError`` becomes an APPLICATION failure whose ``type`` is the class name,
    as temporalio does, so activity/workflow code may raise any exception.

    Args:
        exc: The exception.
        converter: Encodes details; the default converter if None.
    """
    conv = converter or DataConverter.default
    stack = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    if not stack and isinstance(exc, FailureError) and exc.failure is not None:
        stack = exc.failure.stack_trace  # re-raised remote failure: keep the remote trace
    cause = None
    if exc.__cause__ is not None:
        if _depth < _CAUSE_DEPTH_MAX:
            cause = error_to_failure(exc.__cause__, conv, _depth=_depth + 1)
    fields: dict[str, Any] = {"stack_trace": stack, "cause": cause}
    if isinstance(exc, FailureError):
        fields.update(_failure_fields(exc, conv))
        return wire.Failure(message=exc.message, **fields)
    return wire.Failure(
        message=str(exc), kind=wire.FailureKind.APPLICATION, type=type(exc).__name__, **fields
    )


def _failure_fields(exc: FailureError, conv: DataConverter) -> dict[str, Any]:
    if isinstance(exc, ApplicationError):
        return {"kind": wire.FailureKind.APPLICATION, "type": exc.type or "",
                "non_retryable": exc.non_retryable, "details": conv.to_payloads(exc.details)}
    if isinstance(exc, TimeoutError):
        return {"kind": wire.FailureKind.TIMEOUT,
                "timeout_type": None if exc.type is None else wire.TimeoutType(int(exc.type)),
                "details": conv.to_payloads(exc.last_heartbeat_details)}
    if isinstance(exc, CancelledError):
        return {"kind": wire.FailureKind.CANCELED, "details": conv.to_payloads(exc.details)}
    if isinstance(exc, TerminatedError):
        return {"kind": wire.FailureKind.TERMINATED, "details": conv.to_payloads(exc.details)}
    if isinstance(exc, ServerError):
        return {"kind": wire.FailureKind.SERVER, "non_retryable": exc.non_retryable}
    if isinstance(exc, ActivityError):
        return {"kind": wire.FailureKind.ACTIVITY, "activity_type": exc.activity_type,
                "activity_id": exc.activity_id, "scheduled_event_id": exc.scheduled_event_id,
                "started_event_id": exc.started_event_id, "identity": exc.identity,
                "retry_state": _wire_retry_state(exc.retry_state)}
    if isinstance(exc, ChildWorkflowError):
        return {"kind": wire.FailureKind.CHILD_WORKFLOW,
                "retry_state": _wire_retry_state(exc.retry_state)}
    # Any other FailureError subclass travels as an application failure named by its class.
    return {"kind": wire.FailureKind.APPLICATION, "type": type(exc).__name__}


def _wire_retry_state(state: Optional[RetryState]) -> Optional[wire.RetryState]:
    return None if state is None else wire.RetryState(int(state))


# --------------------------------------------------------------------------------------
# wire.Failure -> exception
# --------------------------------------------------------------------------------------


def failure_to_error(failure: wire.Failure,
                     converter: Optional[DataConverter] = None) -> FailureError:
    """Decode a ``wire.Failure`` (and its cause chain, as ``__cause__``) into an exception.

    Details decode without type hints. The wire failure stays reachable as ``err.failure``
    (its ``stack_trace`` is the remote one).
    """
    conv = converter or DataConverter.default
    err = _error_of(failure, conv)
    err._failure = failure
    if failure.cause is not None:
        err.__cause__ = failure_to_error(failure.cause, conv)
    return err


def _details(failure: wire.Failure, conv: DataConverter) -> list[Any]:
    try:
        return conv.from_payloads(failure.details)
    except ValueError:
        return []  # undecodable details must not hide the failure itself


def _error_of(f: wire.Failure, conv: DataConverter) -> FailureError:
    kind = f.kind
    if kind == wire.FailureKind.TIMEOUT:
        tt = None if f.timeout_type is None else TimeoutType(int(f.timeout_type))
        return TimeoutError(f.message, type=tt, last_heartbeat_details=_details(f, conv))
    if kind == wire.FailureKind.CANCELED:
        return CancelledError(f.message, *_details(f, conv))
    if kind == wire.FailureKind.TERMINATED:
        return TerminatedError(f.message, *_details(f, conv))
    if kind == wire.FailureKind.SERVER:
        return ServerError(f.message, non_retryable=f.non_retryable)
    retry_state = None if f.retry_state is None else RetryState(int(f.retry_state))
    if kind == wire.FailureKind.ACTIVITY:
        return ActivityError(
            f.message, scheduled_event_id=f.scheduled_event_id or 0,
            started_event_id=f.started_event_id or 0, identity=f.identity or "",
            activity_type=f.activity_type or "", activity_id=f.activity_id or "",
            retry_state=retry_state)
    if kind == wire.FailureKind.CHILD_WORKFLOW:
        return ChildWorkflowError(f.message, retry_state=retry_state)
    return ApplicationError(
        f.message, *_details(f, conv), type=f.type or None, non_retryable=f.non_retryable)
