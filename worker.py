"""``shoal.worker``: run workflows and activities (mirrors ``temporalio.worker``)."""

from shoal.sdk.worker import Worker

__all__ = ["Worker"]
