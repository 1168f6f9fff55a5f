"""shoal: a durable-execution engine (Temporal's model) on identical peers.

The everyday names are importable from here (``from shoal import workflow, activity, Client,
Worker, RetryPolicy``); they load lazily so that a node process, which needs none of the SDK,
does not pay for importing it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "workflow": ("shoal.workflow", None),
    "activity": ("shoal.activity", None),
    "exceptions": ("shoal.exceptions", None),
    "common": ("shoal.common", None),
    "Client": ("shoal.client", "Client"),
    "WorkflowHandle": ("shoal.client", "WorkflowHandle"),
    "WorkflowFailureError": ("shoal.client", "WorkflowFailureError"),
    "Worker": ("shoal.worker", "Worker"),
    "RetryPolicy": ("shoal.common", "RetryPolicy"),
    "ApplicationError": ("shoal.exceptions", "ApplicationError"),
    "ActivityError": ("shoal.exceptions", "ActivityError"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'shoal' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value
