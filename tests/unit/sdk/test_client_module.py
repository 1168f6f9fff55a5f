"""``shoal.sdk.client`` after its split: every public name is still importable from it."""

from __future__ import annotations

import importlib

import pytest

# The names ``from shoal.sdk.client import X`` found before the handle, the run types and
# async activity completion moved to private modules.
_PUBLIC = [
    "AsyncActivityHandle", "Client", "ConnectionLost", "HistoryEvent", "RPCError",
    "RetryPolicy", "ServiceConnection", "WorkflowContinuedAsNewError", "WorkflowExecution",
    "WorkflowExecutionCount", "WorkflowExecutionDescription", "WorkflowExecutionStatus",
    "WorkflowFailureError", "WorkflowHandle", "WorkflowHistory", "WorkflowIDReusePolicy",
    "WorkflowQueryFailedError", "WorkflowUpdateFailedError", "decode_search_attributes",
    "encode_search_attributes",
]


@pytest.mark.parametrize("name", _PUBLIC)
def test_public_name_is_still_importable_from_sdk_client(name: str) -> None:
    module = importlib.import_module("shoal.sdk.client")
    assert getattr(module, name) is not None


def test_shoal_client_reexports_the_same_objects_as_sdk_client() -> None:
    import shoal.client as top
    import shoal.sdk.client as sdk

    for name in top.__all__:
        assert getattr(top, name) is getattr(sdk, name)


def test_sdk_modules_do_not_import_node_or_cli() -> None:
    import pathlib

    sdk_dir = pathlib.Path(importlib.import_module("shoal.sdk").__file__).parent
    for path in sorted(sdk_dir.glob("*.py")):
        text = path.read_text()
        for layer in ("shoal.node", "shoal.cli"):
            assert f"from {layer}" not in text and f"import {layer}" not in text, path.name
