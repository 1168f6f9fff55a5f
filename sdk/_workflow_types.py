"""Plain types the workflow runtime, its parts and the workflow API all use.

Owns: ``Info``, ``ActivityHandle`` and ``ActivityCancellationType`` (re-exported by
``shoal.sdk.workflow``, where users import them), ``HistoryMismatch``, the ``RuntimeCore``
protocol (the few runtime members that the runtime's parts, ``ChildWorkflows`` and
``Interactions``, use), and ``running_runtime`` (the run behind asyncio's running loop).
This is the bottom of the workflow-side import graph, so the runtime, its parts and
``workflow.py`` import it and never each other in a circle. Must not: import
``_runtime``, ``_children``, ``_interactions`` or ``workflow`` (not even under
``TYPE_CHECKING``), hold state, do I/O or read a clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Generic, Mapping, MutableMapping, Optional, Protocol, TypeVar

from shoal import wire
from shoal.sdk._loop import WorkflowLoop
from shoal.sdk.common import RetryPolicy

if TYPE_CHECKING:
    from shoal.sdk._commands import ProducedCommand
    from shoal.sdk._definition import WorkflowDefinition
    from shoal.sdk.converter import DataConverter

ReturnType = TypeVar("ReturnType")


class HistoryMismatch(Exception):
    """History refers to something this run never created (corrupt or foreign history)."""


def running_runtime() -> Any:
    """The ``WorkflowRuntime`` whose workflow task is running on this thread.

    Raises:
        RuntimeError: No workflow task is running (called outside a workflow).
    """
    loop = asyncio.events._get_running_loop()
    if not isinstance(loop, WorkflowLoop) or loop.shoal_runtime is None:
        raise RuntimeError("Not in workflow event loop")
    return loop.shoal_runtime


class RuntimeCore(Protocol):
    """What the runtime's parts (children, interactions) need of the ``WorkflowRuntime``."""

    defn: WorkflowDefinition
    converter: DataConverter
    loop: WorkflowLoop
    namespace: str
    workflow_id: str
    replaying: bool
    commands: list[ProducedCommand]  # this workflow task's, in order
    task_failure: Optional[BaseException]
    workflow_object: Any  # the instance of the workflow class; None until the run starts

    def next_seq(self) -> int:
        """The next command sequence number of the run."""
        ...

    def add_command(self, command: wire.Command, seq: int = 0) -> None:
        """Append a command to this task's (dropped once the run has closed)."""
        ...

    def drop_unsent(self, seq: int, kind: type) -> bool:
        """Remove this task's command ``seq`` of type ``kind``; False if there is none."""
        ...

    def settle_failure(self, exc: Exception) -> None:
        """An exception escaped workflow code: fail the workflow, or only the task."""
        ...


@dataclass(frozen=True)
class Info:
    """Information about the running workflow (``workflow.info()``), as temporalio's ``Info``."""

    attempt: int
    namespace: str
    run_id: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    start_time: datetime
    execution_timeout: Optional[timedelta] = None
    run_timeout: Optional[timedelta] = None
    task_timeout: Optional[timedelta] = None
    first_execution_run_id: str = ""
    continued_run_id: Optional[str] = None
    retry_policy: Optional[RetryPolicy] = None
    cron_schedule: Optional[str] = None
    parent: None = None
    headers: Mapping[str, bytes] = field(default_factory=dict)
    # Decoded; ``upsert_search_attributes`` updates it in place.
    search_attributes: MutableMapping[str, Any] = field(default_factory=dict)
    memo: Mapping[str, Any] = field(default_factory=dict)

    @property
    def workflow_start_time(self) -> datetime:
        """When the run started (same as ``start_time`` until continue-as-new exists)."""
        return self.start_time

    def get_current_history_length(self) -> int:
        """Events in history up to the current workflow task's start."""
        return int(running_runtime().history_length)

    def is_continued_as_new_suggested(self) -> bool:
        """Always False for now: shoal does not suggest continue-as-new yet."""
        return False


class ActivityCancellationType(IntEnum):
    """What cancelling an activity handle does (as temporalio).

    TRY_CANCEL: ask the server to cancel the activity and raise at once.
    WAIT_CANCELLATION_COMPLETED: ask, and raise only once the activity has ended (a
    heartbeating activity acknowledges; one that completes meanwhile returns its result).
    ABANDON: do not tell the server; raise at once and ignore the eventual outcome.
    In each case the awaiting code sees ``ActivityError`` caused by ``CancelledError``.
    """

    TRY_CANCEL = 0
    WAIT_CANCELLATION_COMPLETED = 1
    ABANDON = 2


class ActivityHandle(asyncio.Task, Generic[ReturnType]):  # type: ignore[type-arg]
    """A started activity: an ``asyncio.Task`` that resolves to the activity's result.

    Raises (when awaited):
        shoal.exceptions.ActivityError: The activity failed or timed out; ``.cause`` says why.
    """
