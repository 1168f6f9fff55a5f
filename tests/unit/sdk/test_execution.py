"""The client's run summaries carry temporalio's fields, built from the node's wire info."""

from __future__ import annotations

from datetime import datetime, timezone

import trio

from shoal import wire
from shoal.sdk import converter
from shoal.sdk._execution import WorkflowExecution, WorkflowExecutionDescription


def _info(**kw) -> wire.WorkflowExecutionInfo:
    fields = dict(workflow_id="c", run_id="c-run", workflow_type="C", task_queue="q",
                  status=wire.WorkflowExecutionStatus.RUNNING, start_time=10.0,
                  execution_time=10.0, history_length=3)
    fields.update(kw)
    return wire.WorkflowExecutionInfo(**fields)


def test_parent_and_root_ids_come_from_the_info() -> None:
    info = _info(namespace="ns-a", history_size_bytes=321,
                 parent_execution=wire.WorkflowExecution(workflow_id="p", run_id="p-run"),
                 root_execution=wire.WorkflowExecution(workflow_id="top", run_id="top-run"))
    ex = WorkflowExecution._from_info(info, "client-ns", converter.default())
    assert (ex.parent_id, ex.parent_run_id) == ("p", "p-run")
    assert (ex.root_id, ex.root_run_id) == ("top", "top-run")
    assert ex.namespace == "ns-a"  # the row's own, not the client's
    assert ex.execution_time == datetime.fromtimestamp(10.0, tz=timezone.utc)
    assert ex.raw_info.history_size_bytes == 321


def test_an_old_row_gets_the_clients_namespace_and_no_parent() -> None:
    ex = WorkflowExecution._from_info(_info(), "client-ns", converter.default())
    assert ex.namespace == "client-ns"
    assert (ex.parent_id, ex.parent_run_id, ex.root_id, ex.root_run_id) == (None, None, None, None)


def test_a_description_has_no_static_summary_or_details() -> None:
    base = WorkflowExecution._from_info(_info(), "ns", converter.default())
    desc = WorkflowExecutionDescription(
        **{f: getattr(base, f) for f in base.__dataclass_fields__}, raw_description=None)

    async def main() -> tuple[str | None, str | None]:
        return await desc.static_summary(), await desc.static_details()

    assert trio.run(main) == (None, None)
