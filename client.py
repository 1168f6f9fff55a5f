"""``shoal.client``: start and inspect workflows (mirrors ``temporalio.client``)."""

from shoal.sdk.client import (
    Client,
    WorkflowContinuedAsNewError,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from shoal.sdk.history import WorkflowHistory

__all__ = [
    "Client",
    "WorkflowContinuedAsNewError",
    "WorkflowExecution",
    "WorkflowExecutionDescription",
    "WorkflowExecutionStatus",
    "WorkflowFailureError",
    "WorkflowHandle",
    "WorkflowHistory",
    "WorkflowQueryFailedError",
]
