"""``shoal.worker``: run workflows and activities (mirrors ``temporalio.worker``)."""

from shoal.sdk.worker import Replayer, Worker, WorkflowReplayResult, WorkflowReplayResults

__all__ = ["Replayer", "Worker", "WorkflowReplayResult", "WorkflowReplayResults"]
