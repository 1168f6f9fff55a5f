"""The replayer (temporalio's ``worker.Replayer``): run workflow code against a history.

Owns: replaying whole histories with ``WorkflowInstance`` (the worker's own replay and
non-determinism check) without a server, and turning a failed replay into the error
temporalio's replayer gives: ``NondeterminismError`` when the code's commands disagree
with history, ``RuntimeError`` for other task failures. Must not: talk to a server or
run activities (their results come from history).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, AsyncIterable, Iterable, Optional, Union

from shoal import wire
from shoal.sdk import converter as _converter
from shoal.sdk._commands import NondeterminismError
from shoal.sdk._definition import WorkflowDefinition
from shoal.sdk.history import WorkflowHistory
from shoal.sdk.workflow_instance import WorkflowInstance


@dataclass(frozen=True)
class WorkflowReplayResult:
    """One history's replay (temporalio's name and fields)."""

    history: WorkflowHistory
    """The history replayed."""

    replay_failure: Optional[Exception]
    """Why the replay failed (``NondeterminismError`` when the code no longer matches the
    history), or None. A workflow that failed in history is not a replay failure."""


@dataclass(frozen=True)
class WorkflowReplayResults:
    """The replays of several histories."""

    replay_failures: Mapping[str, Exception]
    """Replay failures, keyed by run id."""


class Replayer:
    """Replays workflow histories against workflow code (``temporalio.worker.Replayer``).

    Args:
        workflows: The workflow classes, as given to the ``Worker``.
        namespace: The namespace the workflow code sees.
        data_converter: The converter the histories' payloads were written with.
        workflow_task_executor, workflow_runner, unsandboxed_workflow_runner, plugins,
        build_id, identity, workflow_failure_exception_types, debug_mode, runtime,
        disable_safe_workflow_eviction, header_codec_behavior: Accepted so temporalio code
            ports; shoal's replay runs workflow code inline and has no use for them.
        interceptors: Must be empty: shoal has no worker interceptors.

    Raises:
        ValueError: No workflows, one registered twice, or interceptors given.
    """

    def __init__(
        self,
        *,
        workflows: Sequence[type],
        workflow_task_executor: Any = None,
        workflow_runner: Any = None,
        unsandboxed_workflow_runner: Any = None,
        namespace: str = "ReplayNamespace",
        data_converter: Optional[_converter.DataConverter] = None,
        interceptors: Sequence[Any] = (),
        plugins: Sequence[Any] = (),
        build_id: Optional[str] = None,
        identity: Optional[str] = None,
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        debug_mode: bool = False,
        runtime: Any = None,
        disable_safe_workflow_eviction: bool = False,
        header_codec_behavior: Any = None,
    ) -> None:
        if not workflows:
            raise ValueError("At least one workflow must be specified")
        if interceptors:
            raise ValueError("shoal has no worker interceptors; pass interceptors=[]")
        self._workflows: dict[str, WorkflowDefinition] = {}
        for cls in workflows:
            defn = WorkflowDefinition.from_class(cls)
            if defn.name in self._workflows:
                raise ValueError(f"workflow {defn.name!r} registered twice")
            self._workflows[defn.name] = defn
        self._namespace = namespace
        self._converter = data_converter or _converter.default()

    async def replay_workflow(self, history: WorkflowHistory, *,
                              raise_on_replay_failure: bool = True) -> WorkflowReplayResult:
        """Replay one history.

        Args:
            history: From ``handle.fetch_history()`` or ``WorkflowHistory.from_json``.
            raise_on_replay_failure: Raise the replay failure instead of returning it.

        Returns:
            The result; its ``replay_failure`` is None when the code matches the history.

        Raises:
            NondeterminismError: The code's commands differ from the history's (only with
                ``raise_on_replay_failure``).
            RuntimeError: Another workflow task failure during replay (likewise).
        """
        result = self._replay(history)
        if raise_on_replay_failure and result.replay_failure is not None:
            raise result.replay_failure
        return result

    async def replay_workflows(
        self, histories: Union[AsyncIterable[WorkflowHistory], Iterable[WorkflowHistory]], *,
        raise_on_replay_failure: bool = True,
    ) -> WorkflowReplayResults:
        """Replay several histories (an async iterator, as temporalio's, or a plain one).

        Returns:
            The failures by run id (empty when all replayed cleanly).

        Raises:
            NondeterminismError, RuntimeError: The first failure, with
                ``raise_on_replay_failure``.
        """
        failures: dict[str, Exception] = {}
        async with self.workflow_replay_iterator(histories) as results:
            async for result in results:
                if result.replay_failure is None:
                    continue
                if raise_on_replay_failure:
                    raise result.replay_failure
                failures[result.history.run_id] = result.replay_failure
        return WorkflowReplayResults(replay_failures=failures)

    def workflow_replay_iterator(
        self, histories: Union[AsyncIterable[WorkflowHistory], Iterable[WorkflowHistory]],
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]]:
        """``async with`` this, then ``async for`` the results, one per history, in order."""
        return self._iterate(histories)

    @contextlib.asynccontextmanager
    async def _iterate(self, histories: Any) -> AsyncIterator[AsyncIterator[WorkflowReplayResult]]:
        async def results() -> AsyncIterator[WorkflowReplayResult]:
            if hasattr(histories, "__aiter__"):
                async for history in histories:
                    yield self._replay(history)
            else:
                for history in histories:
                    yield self._replay(history)

        yield results()

    def _replay(self, history: WorkflowHistory) -> WorkflowReplayResult:
        events = [e.raw for e in history.events]
        try:
            instance = self._instance(history, events)
        except RuntimeError as exc:
            return WorkflowReplayResult(history=history, replay_failure=exc)
        try:
            activation = instance.activate(events)
        finally:
            instance.close()
        return WorkflowReplayResult(history=history, replay_failure=_failure_of(activation))

    def _instance(self, history: WorkflowHistory, events: list[wire.HistoryEvent]) -> WorkflowInstance:
        if not events:
            raise RuntimeError("the history has no events")
        started = events[0].attributes
        if not isinstance(started, wire.WorkflowExecutionStartedAttributes):
            raise RuntimeError("the history's first event is not WorkflowExecutionStarted")
        defn = self._workflows.get(started.workflow_type)
        if defn is None:
            raise RuntimeError(
                f"workflow type {started.workflow_type!r} is not registered with this "
                f"Replayer (registered: {', '.join(sorted(self._workflows))})")
        return WorkflowInstance(defn, namespace=self._namespace, task_queue=started.task_queue,
                                workflow_id=history.workflow_id, run_id=history.run_id,
                                converter=self._converter)


def _failure_of(activation: Any) -> Optional[Exception]:
    """The exception temporalio's replayer gives for a failed workflow task (or None)."""
    failure: Optional[wire.Failure] = activation.failure
    if failure is None:
        return None
    if activation.cause == wire.WorkflowTaskFailedCause.NON_DETERMINISTIC_ERROR:
        return NondeterminismError(failure.message)
    cause = activation.cause.name if activation.cause is not None else "UNKNOWN"
    return RuntimeError(f"{cause}: {failure.message}")
