"""What the client reports about runs: ``list_workflows``, ``count_workflows``, ``describe``.

Owns: the read-only value types (temporalio's ``WorkflowExecution``,
``WorkflowExecutionCount``, ``WorkflowExecutionDescription``) built from the node's wire
answers. Must not: talk to a node (``client.py`` and ``_handle.py`` do) or import
``shoal.node``. Re-exported by ``shoal.sdk.client``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shoal import wire
from shoal.sdk import converter as _converter
from shoal.sdk.converter import decode_search_attributes

WorkflowExecutionStatus = wire.WorkflowExecutionStatus


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass(frozen=True)
class WorkflowExecution:
    """A run as ``list_workflows`` and ``describe`` report it (temporalio's names and types).

    temporalio's ``typed_search_attributes`` is missing: shoal has no typed search attribute
    keys yet (``search_attributes`` holds the decoded values). Temporal's history size is on
    ``raw_info.history_size_bytes``, where temporalio has it too.
    """

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus | None
    start_time: datetime
    close_time: datetime | None
    execution_time: datetime | None
    """When the run started or should start (no start delay exists yet: its start time)."""
    history_length: int
    namespace: str
    parent_id: str | None
    """ID of the parent workflow if this run was started as a child."""
    parent_run_id: str | None
    root_id: str | None
    """ID of the workflow at the top of the parent chain (this one's if it has no parent)."""
    root_run_id: str | None
    search_attributes: Mapping[str, Any]
    raw_info: wire.WorkflowExecutionInfo
    data_converter: _converter.DataConverter

    @classmethod
    def _from_info(
        cls, info: wire.WorkflowExecutionInfo, namespace: str,
        data_converter: _converter.DataConverter,
    ) -> WorkflowExecution:
        """``namespace``: the client's, for a row written before rows kept their own."""
        parent, root = info.parent_execution, info.root_execution
        return cls(
            id=info.workflow_id, run_id=info.run_id, workflow_type=info.workflow_type,
            task_queue=info.task_queue, status=info.status, start_time=_dt(info.start_time),  # type: ignore[arg-type]
            close_time=_dt(info.close_time), execution_time=_dt(info.execution_time),
            history_length=info.history_length, namespace=info.namespace or namespace,
            parent_id=parent.workflow_id if parent else None,
            parent_run_id=parent.run_id if parent else None,
            root_id=root.workflow_id if root else None,
            root_run_id=root.run_id if root else None,
            search_attributes=decode_search_attributes(info.search_attributes),
            raw_info=info, data_converter=data_converter,
        )

    async def memo(self) -> dict[str, Any]:
        """The memo the run was started with, decoded (``temporalio``'s ``memo()``)."""
        return {
            k: self.data_converter.from_payload(v) for k, v in self.raw_info.memo.items()
        }

    async def memo_value(self, key: str, default: Any = None, *, type_hint: Any = None) -> Any:
        """One memo value, rebuilt as ``type_hint``; ``default`` when the memo lacks ``key``."""
        raw = self.raw_info.memo.get(key)
        return default if raw is None else self.data_converter.from_payload(raw, type_hint)


@dataclass(frozen=True)
class WorkflowExecutionCount:
    """``count_workflows``: how many runs match, and per status with GROUP BY."""

    count: int
    groups: list[tuple[WorkflowExecutionStatus, int]]


@dataclass(frozen=True)
class WorkflowExecutionDescription(WorkflowExecution):
    """``describe()``: the summary plus pending work and the last workflow-task failure."""

    raw_description: wire.DescribeWorkflowResponse | None = None

    @property
    def pending_activities(self) -> list[wire.PendingActivityInfo]:
        return list(self.raw_description.pending_activities) if self.raw_description else []

    @property
    def last_workflow_task_failure(self) -> wire.Failure | None:
        return self.raw_description.last_workflow_task_failure if self.raw_description else None

    async def static_summary(self) -> str | None:
        """The run's fixed one-line summary (temporalio's). Always None: shoal's start takes
        no summary yet."""
        return None

    async def static_details(self) -> str | None:
        """The run's fixed details (temporalio's). Always None: shoal's start takes no
        details yet."""
        return None
