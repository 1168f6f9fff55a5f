"""Values shared by client, worker, workflow and activity code (``shoal.common``).

Owns: the user-facing ``RetryPolicy`` (``timedelta`` fields, as ``temporalio.common``) and its
mapping to the wire's seconds-based ``wire.RetryPolicy``, the workflow-id reuse and conflict
policy enums, and the helper that reads argument/return type hints from a function (the
converter decodes with them). Must not: do I/O or know about trio or the event loop.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum
from typing import Any, Callable, Optional, Sequence

from shoal import wire
from shoal.sdk.history import EventType  # Temporal's EVENT_TYPE_* names, for history checks

__all__ = [
    "EventType",
    "QueryRejectCondition",
    "RetryPolicy",
    "WorkflowIDReusePolicy",
    "WorkflowIDConflictPolicy",
    "type_hints_from_func",
]


@dataclass
class RetryPolicy:
    """How the server retries a failed activity or workflow, as ``temporalio.common.RetryPolicy``.

    Attributes:
        initial_interval: Backoff before the first retry. Default 1 s.
        backoff_coefficient: Each retry's backoff is the previous one times this. Default 2.0.
        maximum_interval: Cap on the backoff. None: 100 x ``initial_interval``.
        maximum_attempts: Attempts in all, first included; 0 means unlimited.
        non_retryable_error_types: ``ApplicationError.type`` values never retried.
    """

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: Optional[timedelta] = None
    maximum_attempts: int = 0
    non_retryable_error_types: Optional[Sequence[str]] = None

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        # Same rules temporalio checks client-side, so a bad policy fails at the caller.
        if self.initial_interval < timedelta(0):
            raise ValueError("Initial interval cannot be negative")
        if self.backoff_coefficient < 1:
            raise ValueError("Backoff coefficient cannot be less than 1")
        if self.maximum_interval is not None:
            if self.maximum_interval < timedelta(0):
                raise ValueError("Maximum interval cannot be negative")
            if self.maximum_interval < self.initial_interval:
                raise ValueError("Maximum interval cannot be less than initial interval")
        if self.maximum_attempts < 0:
            raise ValueError("Maximum attempts cannot be negative")

    def to_wire(self) -> wire.RetryPolicy:
        """The policy as the server's seconds-based message."""
        return wire.RetryPolicy(
            initial_interval_s=self.initial_interval.total_seconds(),
            backoff_coefficient=float(self.backoff_coefficient),
            maximum_interval_s=(
                None if self.maximum_interval is None else self.maximum_interval.total_seconds()
            ),
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=list(self.non_retryable_error_types or ()),
        )

    @staticmethod
    def from_wire(policy: wire.RetryPolicy) -> RetryPolicy:
        """Build the user-facing policy from the wire message."""
        return RetryPolicy(
            initial_interval=timedelta(seconds=policy.initial_interval_s),
            backoff_coefficient=policy.backoff_coefficient,
            maximum_interval=(
                None
                if policy.maximum_interval_s is None
                else timedelta(seconds=policy.maximum_interval_s)
            ),
            maximum_attempts=policy.maximum_attempts,
            non_retryable_error_types=list(policy.non_retryable_error_types) or None,
        )


class WorkflowIDReusePolicy(IntEnum):
    """Whether a workflow id may start again after a run with it closed (numbers as Temporal)."""

    ALLOW_DUPLICATE = int(wire.IdReusePolicy.ALLOW_DUPLICATE)
    ALLOW_DUPLICATE_FAILED_ONLY = int(wire.IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
    REJECT_DUPLICATE = int(wire.IdReusePolicy.REJECT_DUPLICATE)
    TERMINATE_IF_RUNNING = int(wire.IdReusePolicy.TERMINATE_IF_RUNNING)

    def to_wire(self) -> wire.IdReusePolicy:
        """The policy as the wire enum."""
        return wire.IdReusePolicy(int(self))


class WorkflowIDConflictPolicy(IntEnum):
    """What to do when a start finds a *running* workflow with the id (numbers as Temporal).

    Declared for name parity with temporalio; the server currently always behaves as
    ``FAIL`` unless the reuse policy says ``TERMINATE_IF_RUNNING``.
    """

    UNSPECIFIED = 0
    FAIL = 1
    USE_EXISTING = 2
    TERMINATE_EXISTING = 3


class QueryRejectCondition(IntEnum):
    """When a query of a closed workflow is refused instead of answered (numbers as
    Temporal's): ``NOT_OPEN`` refuses any closed run, ``NOT_COMPLETED_CLEANLY`` one that
    closed other than completed. A refused query raises ``WorkflowQueryRejectedError``."""

    NONE = int(wire.QueryRejectCondition.NONE)
    NOT_OPEN = int(wire.QueryRejectCondition.NOT_OPEN)
    NOT_COMPLETED_CLEANLY = int(wire.QueryRejectCondition.NOT_COMPLETED_CLEANLY)

    def to_wire(self) -> wire.QueryRejectCondition:
        """The condition as the wire enum."""
        return wire.QueryRejectCondition(int(self))


def type_hints_from_func(func: Callable[..., Any]) -> tuple[Optional[list[Any]], Any]:
    """Argument and return type hints of a function, for decoding its payloads.

    Args:
        func: A function or method (bound or unbound; ``self`` is skipped for methods).

    Returns:
        ``(arg_types, return_type)``. ``arg_types`` is None when an argument has no usable
        annotation or the function takes ``*args``/``**kwargs`` (decode without hints then);
        ``return_type`` is None when not annotated.
    """
    fn = inspect.unwrap(func)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward reference: decode without hints, never crash
        hints = {}
    sig = inspect.signature(fn)
    ret = hints.get("return")
    if ret is type(None):
        ret = None
    params = list(sig.parameters.values())
    # Unbound methods still list ``self``; bound ones (``inspect.signature``) already drop it.
    if params and params[0].name == "self" and not inspect.ismethod(func):
        params = params[1:]
    arg_types: list[Any] = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return None, ret
        if p.name not in hints:
            return None, ret
        arg_types.append(hints[p.name])
    return arg_types, ret
