"""The workflow runtime stands below the workflow API, and names moved out of it still
import from where users import them. (No circles anywhere: tests/unit/test_layering.py.)"""

from __future__ import annotations

from helpers.import_graph import GRAPH


def test_runtime_and_its_parts_do_not_import_the_workflow_api() -> None:
    for low_module in ("_runtime", "_children", "_interactions", "_workflow_types"):
        assert "shoal.sdk.workflow" not in GRAPH[f"shoal.sdk.{low_module}"], low_module


def test_names_moved_to_workflow_types_still_import_from_the_workflow_api() -> None:
    from shoal import workflow as root_workflow
    from shoal.sdk import _workflow_types, workflow
    from shoal.sdk._runtime import HistoryMismatch

    for name in ("Info", "ActivityHandle", "ActivityCancellationType"):
        assert getattr(workflow, name) is getattr(_workflow_types, name)
        assert getattr(root_workflow, name) is getattr(_workflow_types, name)
    assert HistoryMismatch is _workflow_types.HistoryMismatch
    assert all(hasattr(root_workflow, name) for name in workflow.__all__)
