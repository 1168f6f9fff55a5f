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
    """A run as ``list_workflows`` and ``describe`` report it (temporalio's names)."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    execution_time: datetime | None
    history_length: int
    search_attributes: Mapping[str, Any]
    raw_info: wire.WorkflowExecutionInfo
    data_converter: _converter.DataConverter

    @classmethod
    def _from_info(
        cls, info: wire.WorkflowExecutionInfo, data_converter: _converter.DataConverter
    ) -> WorkflowExecution:
        return cls(
            id=info.workflow_id, run_id=info.run_id, workflow_type=info.workflow_type,
            task_queue=info.task_queue, status=info.status, start_time=_dt(info.start_time),  # type: ignore[arg-type]
            close_time=_dt(info.close_time), execution_time=_dt(info.execution_time),
            history_length=info.history_length,
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
