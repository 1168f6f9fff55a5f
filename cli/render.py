"""How the client-side commands show things: JSON values, payloads, times, statuses, events.

Owns: turning wire values into JSON-ready plain values (payloads decoded with the default
converter) and into rich renderables (coloured statuses, the history view). Must not: talk
to a node.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
from typing import Any

import cbor2
from rich.text import Text

from shoal import wire

# Fields whose bytes are payloads (one CBOR value each): shown decoded, not as bytes.
_PAYLOAD_LIST_FIELDS = {"input", "result", "details", "heartbeat_details", "last_completion_result",
                        "last_heartbeat_details", "query_args", "signal_input"}


def status_name(status: int) -> str:
    """``CONTINUED_AS_NEW`` -> ``ContinuedAsNew`` (the names list queries and Temporal use)."""
    return "".join(p.capitalize() for p in wire.WorkflowExecutionStatus(status).name.split("_"))


def event_type_name(event_type: int) -> str:
    """``WORKFLOW_TASK_STARTED`` -> ``WorkflowTaskStarted``."""
    return "".join(p.capitalize() for p in wire.EventType(event_type).name.split("_"))


_STATUS_STYLE = {
    wire.WorkflowExecutionStatus.RUNNING: "bold blue",
    wire.WorkflowExecutionStatus.COMPLETED: "bold green",
    wire.WorkflowExecutionStatus.FAILED: "bold red",
    wire.WorkflowExecutionStatus.CANCELED: "yellow",
    wire.WorkflowExecutionStatus.TERMINATED: "red",
    wire.WorkflowExecutionStatus.CONTINUED_AS_NEW: "cyan",
    wire.WorkflowExecutionStatus.TIMED_OUT: "red",
}


def status_text(status: int) -> Text:
    return Text(status_name(status), style=_STATUS_STYLE[wire.WorkflowExecutionStatus(status)])


def event_style(name: str) -> str:
    """Colour by what an event means: failures red, completions green, signals magenta."""
    if name.endswith(("Failed", "TimedOut", "Terminated")):
        return "red"
    if name.endswith(("Completed", "Fired")):
        return "green"
    if "Signal" in name or "Update" in name:
        return "magenta"
    if name.startswith("Timer"):
        return "yellow"
    if "Cancel" in name:
        return "yellow"
    if name.startswith("WorkflowTask"):
        return "dim"
    return "cyan"


def when(ts: float | None) -> str:
    """An instant as local ISO-8601 with milliseconds, or '' for none."""
    if ts is None:
        return ""
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def time_of_day(ts: float) -> str:
    """``HH:MM:SS.mmm`` local: enough to read a history's pace in a narrow column."""
    return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S.%f")[:-3]


def decode_payload(raw: bytes) -> Any:
    """A payload's value for showing; bytes that are not CBOR are shown as base64."""
    try:
        return plain(cbor2.loads(raw))
    except Exception:  # noqa: BLE001 - not ours to decode: show the bytes
        return "base64:" + base64.b64encode(raw).decode()


def plain(value: Any, field_name: str = "") -> Any:
    """A wire value (dataclass, enum, payloads, bytes) as JSON-ready plain values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or v == [] or v == {} or v == "":
                continue
            out[f.name] = plain(v, f.name)
        return out
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (bytes, bytearray)):
        if field_name in _PAYLOAD_LIST_FIELDS or field_name in ("memo", "search_attributes"):
            return decode_payload(bytes(value))
        return "base64:" + base64.b64encode(value).decode()
    if isinstance(value, dict):
        payloads = field_name in ("memo", "search_attributes", "header")
        return {
            str(k): (decode_payload(v) if payloads and isinstance(v, bytes) else plain(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        if field_name in _PAYLOAD_LIST_FIELDS:
            return [decode_payload(v) if isinstance(v, bytes) else plain(v) for v in value]
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def compact(value: Any, limit: int = 120) -> str:
    """One line of JSON, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_line(failure: wire.Failure) -> str:
    """``message (type)``, then each cause: what a person reads first."""
    parts = []
    f: wire.Failure | None = failure
    while f is not None:
        kind = f.type or f.kind.name.lower()
        parts.append(f"{f.message} ({kind})" if kind else f.message)
        f = f.cause
    return " <- caused by: ".join(parts)


def event_summary(event: wire.HistoryEvent) -> str:
    """The attributes worth a glance, as one line (ids and payloads first)."""
    attrs = plain(event.attributes)
    if not isinstance(attrs, dict):
        return ""
    noisy = {"identity", "request_id", "workflow_task_completed_event_id", "header"}
    shown = {k: v for k, v in attrs.items() if k not in noisy}
    failure = getattr(event.attributes, "failure", None)
    if "failure" in shown and isinstance(failure, wire.Failure):
        shown["failure"] = failure_line(failure)
    return compact(shown)
