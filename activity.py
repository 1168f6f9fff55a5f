"""``shoal.activity``: define activities and read the running attempt (mirrors ``temporalio.activity``)."""

from shoal.sdk.activity import (
    ActivityDefinition,
    CompleteAsyncError,
    Info,
    defn,
    heartbeat,
    in_activity,
    info,
    is_cancelled,
    raise_complete_async,
)

__all__ = [
    "ActivityDefinition", "CompleteAsyncError", "Info", "defn", "heartbeat", "in_activity", "info",
    "is_cancelled", "raise_complete_async",
]
