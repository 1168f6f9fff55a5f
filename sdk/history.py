"""History as Temporal users read it: ``ev.event_type``, ``ev.<type>_event_attributes``.

Owns: a read-only view over ``wire.HistoryEvent`` with temporalio's (protobuf) names, so code
like ``ev.activity_task_scheduled_event_attributes.activity_type.name`` ports unchanged, and
``EventType`` with Temporal's ``EVENT_TYPE_`` member names. Must not: change events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shoal import wire

EventType = enum.IntEnum(  # type: ignore[misc]
    "EventType",
    [("EVENT_TYPE_UNSPECIFIED", 0)] + [(f"EVENT_TYPE_{e.name}", e.value) for e in wire.EventType],
)
EventType.__doc__ = "Temporal's ``enums.v1.EventType``: same numbers, same names."

_NAMED = frozenset({"activity_type", "workflow_type", "task_queue"})


@dataclass(frozen=True, slots=True)
class _Named:
    """Temporal wraps type and queue names in messages with a ``name`` field."""

    name: str


class EventAttributes:
    """One event's attributes with Temporal's field names.

    Durations read as ``timedelta`` under Temporal's name (``start_to_close_timeout``);
    ``activity_type``, ``workflow_type`` and ``task_queue`` have a ``.name``.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        raw = object.__getattribute__(self, "_raw")
        if name in _NAMED and hasattr(raw, name):
            return _Named(getattr(raw, name))
        if hasattr(raw, name):
            return getattr(raw, name)
        if hasattr(raw, name + "_s"):
            secs = getattr(raw, name + "_s")
            return None if secs is None else timedelta(seconds=secs)
        raise AttributeError(f"{type(raw).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return repr(self._raw)


class HistoryEvent:
    """A history event: ``event_id``, ``event_time``, ``event_type`` and typed attributes."""

    __slots__ = ("raw",)

    def __init__(self, raw: wire.HistoryEvent) -> None:
        self.raw = raw

    @property
    def event_id(self) -> int:
        return self.raw.event_id

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.raw.event_time, tz=timezone.utc)

    @property
    def event_type(self) -> EventType:
        return EventType(int(self.raw.event_type))

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_event_attributes"):
            wanted = name[: -len("_event_attributes")].upper()
            raw = object.__getattribute__(self, "raw")
            return EventAttributes(raw.attributes) if raw.event_type.name == wanted else None
        raise AttributeError(f"HistoryEvent has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"HistoryEvent({self.raw.event_id}, {self.raw.event_type.name})"


@dataclass(frozen=True)
class WorkflowHistory:
    """A run's whole history, as ``handle.fetch_history()`` returns it."""

    workflow_id: str
    events: list[HistoryEvent]
