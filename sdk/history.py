"""History as Temporal users read it: ``ev.event_type``, ``ev.<type>_event_attributes``.

Owns: a read-only view over ``wire.HistoryEvent`` with temporalio's (protobuf) names, so code
like ``ev.activity_task_scheduled_event_attributes.activity_type.name`` ports unchanged, and
``EventType`` with Temporal's ``EVENT_TYPE_`` member names. Must not: change events.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shoal import wire
from shoal.sdk import _history_json

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
    """A run's whole history, as ``handle.fetch_history()`` returns it.

    ``to_json`` / ``from_json`` use Temporal's history JSON (what ``temporal workflow show
    --output json`` prints), so a history moves between shoal and Temporal's tools.
    """

    workflow_id: str
    events: list[HistoryEvent]

    @property
    def run_id(self) -> str:
        """The run id, from the first event (WorkflowExecutionStarted), as temporalio.

        Raises:
            RuntimeError: No events, or the first is not WorkflowExecutionStarted.
        """
        if not self.events:
            raise RuntimeError("No events")
        attrs = self.events[0].raw.attributes
        if not isinstance(attrs, wire.WorkflowExecutionStartedAttributes):
            raise RuntimeError("First event is not workflow start")
        return attrs.original_execution_run_id

    @staticmethod
    def from_json(workflow_id: str, history: str | dict[str, Any]) -> WorkflowHistory:
        """Parse a history written by ``to_json`` or exported from Temporal (CLI or UI).

        Args:
            workflow_id: The workflow's id (the JSON does not carry it).
            history: The JSON text, or the dict it parses to.

        Returns:
            The history.

        Raises:
            ValueError: Not a history, or a value shoal cannot represent (an event type,
                payload encoding or failure kind it lacks); the message names the field.
        """
        parsed = json.loads(history) if isinstance(history, str) else history
        events = _history_json.events_from_json(parsed)
        return WorkflowHistory(workflow_id, [HistoryEvent(e) for e in events])

    def to_json(self) -> str:
        """The history as Temporal's JSON (``{"events": [...]}``, without the workflow id)."""
        return json.dumps(self.to_json_dict(), indent=2, ensure_ascii=False)

    def to_json_dict(self) -> dict[str, Any]:
        """The history as the dict ``to_json`` writes."""
        return _history_json.events_to_json([e.raw for e in self.events])
