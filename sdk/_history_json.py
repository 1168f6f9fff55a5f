"""History events <-> Temporal's history JSON (``temporal workflow show --output json``).

Owns: the JSON shape of ``{"events": [...]}`` as ``google.protobuf.json_format`` writes
Temporal's ``history.v1.History``: camelCase keys, ``"eventId": "1"`` (int64 as string),
``"eventType": "EVENT_TYPE_..."``, the attributes under ``"<eventType>EventAttributes"``,
durations without shoal's ``_s`` suffix, names wrapped as ``{"name": ...}``. Field values
go through ``_payload_json``. Must not: talk to the server or run workflows.

Reading accepts what ``events_to_json`` writes and a real Temporal export: Temporal fields
shoal has no place for (``header``, ``workerVersion``, ``sdkMetadata``, ...) are skipped, as
temporalio's ``from_json`` skips unknown fields; a value shoal cannot represent (an event
type it lacks, a payload encoding, a failure kind) raises ``ValueError`` naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from enum import IntEnum
from typing import Any, Union, get_args, get_origin

from shoal import wire
from shoal.sdk import _payload_json as pj

_ATTRIBUTE_CLASSES: dict[int, type] = {int(c.KIND): c for c in get_args(wire.EventAttributes)}
_INT32 = frozenset({"attempt", "maximum_attempts"})
_NAMED = frozenset({"workflow_type", "activity_type"})
_MAPS = {"memo": "fields", "search_attributes": "indexedFields"}
# Temporal keeps these pairs in one WorkflowExecution message.
_NESTED = {"parentWorkflowExecution": ("parentWorkflowId", "parentRunId"),
           "rootWorkflowExecution": ("rootWorkflowId", "rootRunId"),
           "externalWorkflowExecution": ("externalWorkflowId", None)}
# Free-text causes that are enums in Temporal: the enum's prefix.
_CAUSE_PREFIXES = {
    wire.StartChildWorkflowExecutionFailedAttributes: "START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_",
    wire.SignalExternalWorkflowExecutionFailedAttributes:
        "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_",
    wire.RequestCancelExternalWorkflowExecutionFailedAttributes:
        "CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_",
}


def _camel(snake: str) -> str:
    head, *rest = snake.removesuffix("_s").split("_")
    return head + "".join(p.capitalize() for p in rest)


def attributes_key(event_type: wire.EventType) -> str:
    """``workflowExecutionStartedEventAttributes`` for WORKFLOW_EXECUTION_STARTED."""
    return _camel(event_type.name.lower()) + "EventAttributes"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(get_args(hint))
    return hint, False


# --- writing -----------------------------------------------------------------------------


def _value_to_json(name: str, hint: Any, value: Any) -> Any:
    hint, _ = _strip_optional(hint)
    if name in _NAMED:
        return {"name": value}
    if name == "task_queue":
        return {"name": value, "kind": "TASK_QUEUE_KIND_NORMAL"}
    if name in _MAPS:
        return {_MAPS[name]: {k: pj.payload_to_json(v) for k, v in value.items()}}
    if hint == list[bytes]:
        return pj.payloads_to_json(value)
    if hint == dict[str, list[bytes]]:
        return {k: pj.payloads_to_json(v) for k, v in value.items()}
    if isinstance(value, wire.Failure):
        return pj.failure_to_json(value)
    if isinstance(value, wire.RetryPolicy):
        return pj.retry_policy_to_json(value)
    if isinstance(value, wire.WorkflowExecution):
        return {"workflowId": value.workflow_id, "runId": value.run_id}
    if isinstance(value, wire.UpdateRequest):
        return {"meta": {"updateId": value.update_id, "identity": value.identity},
                "input": {"name": value.name, "args": pj.payloads_to_json(value.input)}}
    if isinstance(value, wire.UpdateOutcome):
        if value.failure is not None:
            return {"failure": pj.failure_to_json(value.failure)}
        return {"success": pj.payloads_to_json(value.result or [])}
    if isinstance(value, IntEnum):
        return pj.enum_to_json(value)
    if name.endswith("_s"):
        return pj.duration_to_json(value)
    if name.endswith("_time"):
        return pj.time_to_json(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if name in _INT32 else str(value)
    return value


def attributes_to_json(attrs: Any) -> dict[str, Any]:
    """One event's attributes as Temporal's ``*EventAttributes`` JSON object."""
    hints = _hints(type(attrs))
    out: dict[str, Any] = {}
    for f in dataclasses.fields(attrs):
        value = getattr(attrs, f.name)
        if value is None or (value in ("", [], {}) and not isinstance(value, bool)
                             and _strip_optional(hints[f.name])[1] is False):
            continue  # proto JSON leaves unset and empty fields out
        if f.name == "update_id":  # UpdateCompleted keeps it in its meta
            out["meta"] = {"updateId": value}
            continue
        if f.name == "cause" and type(attrs) in _CAUSE_PREFIXES:
            value = _CAUSE_PREFIXES[type(attrs)] + value
        out[_camel(f.name)] = _value_to_json(f.name, hints[f.name], value)
    for key, (id_key, run_key) in _NESTED.items():
        if id_key in out:
            nested = {"workflowId": out.pop(id_key)}
            if run_key is not None and run_key in out:
                nested["runId"] = out.pop(run_key)
            out[key] = nested
    return out


def event_to_json(event: wire.HistoryEvent) -> dict[str, Any]:
    """One event as Temporal's ``HistoryEvent`` JSON."""
    return {"eventId": str(event.event_id), "eventTime": pj.time_to_json(event.event_time),
            "eventType": pj.enum_to_json(event.event_type),
            attributes_key(event.event_type): attributes_to_json(event.attributes)}


def events_to_json(events: list[wire.HistoryEvent]) -> dict[str, Any]:
    """A history as Temporal's ``History`` JSON: ``{"events": [...]}``."""
    return {"events": [event_to_json(e) for e in events]}


# --- reading -----------------------------------------------------------------------------


def _zero(hint: Any) -> Any:
    """Proto's value for a field left out: 0, "", false, empty."""
    origin = get_origin(hint) or hint
    if origin in (int, float, str, bool, list, dict):
        return origin()
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return None  # the dataclass default applies (every enum field has one)
    return None


def _value_from_json(name: str, hint: Any, raw: Any, where: str) -> Any:
    hint, _ = _strip_optional(hint)
    if name in _NAMED or name == "task_queue":
        return raw.get("name", "") if isinstance(raw, dict) else str(raw)
    if name in _MAPS:
        fields = (raw or {}).get(_MAPS[name]) or {}
        return {k: pj.payload_from_json(v, f"{where}.{k}") for k, v in fields.items()}
    if hint == list[bytes]:
        return pj.payloads_from_json(raw, where)
    if hint == dict[str, list[bytes]]:
        return {k: pj.payloads_from_json(v, f"{where}.{k}") for k, v in raw.items()}
    if hint is wire.Failure:
        return pj.failure_from_json(raw, where)
    if hint is wire.RetryPolicy:
        return pj.retry_policy_from_json(raw, where)
    if hint is wire.WorkflowExecution:
        return wire.WorkflowExecution(workflow_id=raw.get("workflowId", ""),
                                      run_id=raw.get("runId", ""))
    if hint is wire.UpdateRequest:
        meta, body = raw.get("meta") or {}, raw.get("input") or {}
        return wire.UpdateRequest(update_id=meta.get("updateId", ""), name=body.get("name", ""),
                                  input=pj.payloads_from_json(body.get("args") or {}, where),
                                  identity=meta.get("identity", ""))
    if hint is wire.UpdateOutcome:
        if "failure" in raw:
            return wire.UpdateOutcome(failure=pj.failure_from_json(raw["failure"], where))
        return wire.UpdateOutcome(result=pj.payloads_from_json(raw.get("success") or {}, where))
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return pj.enum_from_json(hint, raw, where)
    if name.endswith("_s"):
        return pj.duration_from_json(raw, where)
    if name.endswith("_time"):
        return pj.time_from_json(raw, where)
    if hint in (int, float, str, bool):
        try:
            return hint(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {raw!r} is not a {hint.__name__}") from None
    return raw


def attributes_from_json(cls: type, obj: Any, where: str) -> Any:
    """Temporal's ``*EventAttributes`` JSON as the shoal attributes class ``cls``."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    obj = dict(obj)
    for key, (id_key, run_key) in _NESTED.items():
        nested = obj.pop(key, None)
        if isinstance(nested, dict):
            obj[id_key] = nested.get("workflowId")
            if run_key is not None:
                obj[run_key] = nested.get("runId")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = _camel(f.name)
        raw = obj.get(key)
        if f.name == "update_id":
            raw = (obj.get("meta") or {}).get("updateId")
        if raw is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                zero = _zero(_strip_optional(hints[f.name])[0])
                if zero is None and not _strip_optional(hints[f.name])[1]:
                    raise ValueError(f"{where}.{key}: missing, and shoal needs it")
                values[f.name] = zero
            continue
        if f.name == "cause" and cls in _CAUSE_PREFIXES:
            raw = str(raw).removeprefix(_CAUSE_PREFIXES[cls])
        values[f.name] = _value_from_json(f.name, hints[f.name], raw, f"{where}.{key}")
    return cls(**values)


def event_from_json(obj: Any, index: int) -> wire.HistoryEvent:
    """One Temporal ``HistoryEvent`` JSON object as a ``wire.HistoryEvent``."""
    where = f"events[{index}]"
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an event object, got {type(obj).__name__}")
    event_type = pj.enum_from_json(wire.EventType, obj.get("eventType", ""), f"{where}.eventType")
    assert isinstance(event_type, wire.EventType)
    cls = _ATTRIBUTE_CLASSES.get(int(event_type))
    if cls is None:
        raise ValueError(f"{where}.eventType: shoal has no {event_type.name} events")
    key = attributes_key(event_type)
    try:
        event_id = int(obj["eventId"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}.eventId: missing or not an integer") from None
    event_time = pj.time_from_json(obj.get("eventTime", "1970-01-01T00:00:00Z"), f"{where}.eventTime")
    attrs = attributes_from_json(cls, obj.get(key) or {}, f"{where}.{key}")
    return wire.HistoryEvent(event_id=event_id, event_time=event_time, event_type=event_type,
                             attributes=attrs)


def events_from_json(history: Any) -> list[wire.HistoryEvent]:
    """``{"events": [...]}`` (a dict, or its JSON text) as ``wire.HistoryEvent`` s.

    Raises:
        ValueError: Not a history, or a value shoal cannot represent (the message names it).
    """
    if not isinstance(history, dict) or not isinstance(history.get("events"), list):
        raise ValueError("a history is a JSON object with an \"events\" list")
    return [event_from_json(e, i) for i, e in enumerate(history["events"])]
