"""``shoal.activity``: define activities and read the running attempt (mirrors ``temporalio.activity``)."""

from shoal.sdk.activity import ActivityDefinition, Info, defn, in_activity, info

__all__ = ["ActivityDefinition", "Info", "defn", "in_activity", "info"]
