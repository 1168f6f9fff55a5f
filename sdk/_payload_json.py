"""Temporal's proto-JSON forms of the values inside history events.

Owns: payloads (``{"metadata": {"encoding": b64}, "data": b64}``), durations (``"1.5s"``),
timestamps (RFC 3339), enums (``RETRY_STATE_TIMEOUT``), failures and retry policies, each
both ways, as ``google.protobuf.json_format`` writes them for Temporal's api protos.
Must not: make payload bytes itself (the payload converter does), or know event types.

A shoal payload is CBOR. When its value survives a trip through JSON unchanged it is
written as Temporal's ``json/plain`` (so Temporal's tools read it); otherwise as
``binary/cbor`` with the bytes as they are. Reading, ``json/plain``, ``binary/null`` and
``binary/plain`` are turned into CBOR by the converter; other encodings cannot be.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any

from shoal import wire
from shoal.sdk.converter import DataConverter

JSON_PLAIN = "json/plain"
BINARY_CBOR = "binary/cbor"

_CONVERTER = DataConverter.default


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"{where}: {text[:40]!r} is not base64") from None


def payload_to_json(data: bytes) -> dict[str, Any]:
    """One shoal payload as a Temporal ``Payload`` JSON object."""
    try:
        value = _CONVERTER.from_payload(data)
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        plain = _CONVERTER.to_payload(json.loads(text)) == data
    except (ValueError, TypeError):
        plain = False  # not CBOR, or no JSON form: keep the bytes
    if plain:
        return {"metadata": {"encoding": _b64(JSON_PLAIN.encode())}, "data": _b64(text.encode())}
    return {"metadata": {"encoding": _b64(BINARY_CBOR.encode())}, "data": _b64(data)}


def payload_from_json(obj: Any, where: str) -> bytes:
    """A Temporal ``Payload`` JSON object as shoal payload bytes.

    Raises:
        ValueError: ``obj`` is not a payload, or its encoding has no shoal form.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a payload object, got {type(obj).__name__}")
    metadata = obj.get("metadata") or {}
    encoding = _unb64(metadata.get("encoding", ""), f"{where}.metadata.encoding").decode()
    data = _unb64(obj.get("data", ""), f"{where}.data")
    if encoding == BINARY_CBOR:
        return data
    if encoding == JSON_PLAIN:
        try:
            return _CONVERTER.to_payload(json.loads(data))
        except ValueError:
            raise ValueError(f"{where}: json/plain data is not JSON") from None
    if encoding == "binary/null":
        return _CONVERTER.to_payload(None)
    if encoding == "binary/plain":
        return _CONVERTER.to_payload(data)
    raise ValueError(f"{where}: payload encoding {encoding!r} has no shoal form "
                     "(shoal reads json/plain, binary/null, binary/plain, binary/cbor)")


def payloads_to_json(payloads: list[bytes]) -> dict[str, Any]:
    return {"payloads": [payload_to_json(p) for p in payloads]}


def payloads_from_json(obj: Any, where: str) -> list[bytes]:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected {{\"payloads\": [...]}}, got {type(obj).__name__}")
    items = obj.get("payloads") or []
    return [payload_from_json(p, f"{where}.payloads[{i}]") for i, p in enumerate(items)]


def duration_to_json(seconds: float) -> str:
    """Proto ``Duration`` JSON: ``"10s"``, ``"1.500s"``."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def duration_from_json(text: Any, where: str) -> float | None:
    """Seconds, or None for ``"0s"`` (Temporal's "not set")."""
    if not isinstance(text, str) or not text.endswith("s"):
        raise ValueError(f"{where}: {text!r} is not a duration like \"10s\"")
    try:
        seconds = float(text[:-1])
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a duration like \"10s\"") from None
    return None if seconds == 0 else seconds


def time_to_json(epoch_s: float) -> str:
    """RFC 3339 in UTC with nanosecond digits, as Temporal writes timestamps.

    Nine digits are finer than a float's resolution at today's epoch, so reading the text
    back gives the same float.
    """
    whole = math.floor(epoch_s)
    nanos = round((epoch_s - whole) * 1e9)
    if nanos == 1_000_000_000:
        whole, nanos = whole + 1, 0
    stamp = datetime.fromtimestamp(whole, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def time_from_json(text: Any, where: str) -> float:
    """Seconds since the epoch from RFC 3339 in UTC (up to nanosecond digits)."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected an RFC 3339 time, got {type(text).__name__}")
    body, digits = text.removesuffix("Z"), "0"
    if "." in body:
        body, digits = body.split(".", 1)
    try:
        whole = datetime.strptime(body, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        if not digits.isdigit():
            raise ValueError(digits)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an RFC 3339 UTC time") from None
    return whole.timestamp() + int(digits.ljust(9, "0")[:9]) / 1e9


# Temporal's enum type name for each shoal enum: the JSON value is PREFIX_MEMBER.
ENUM_PREFIXES: dict[type, str] = {
    wire.RetryState: "RETRY_STATE_",
    wire.TimeoutType: "TIMEOUT_TYPE_",
    wire.WorkflowTaskFailedCause: "WORKFLOW_TASK_FAILED_CAUSE_",
    wire.ParentClosePolicy: "PARENT_CLOSE_POLICY_",
    wire.IdReusePolicy: "WORKFLOW_ID_REUSE_POLICY_",
    wire.EventType: "EVENT_TYPE_",
}


def enum_to_json(value: IntEnum) -> str:
    return ENUM_PREFIXES[type(value)] + value.name


def enum_from_json(cls: type[IntEnum], text: Any, where: str) -> IntEnum:
    """Accepts ``RETRY_STATE_TIMEOUT``, ``Timeout`` (older UI exports) and the number."""
    prefix = ENUM_PREFIXES[cls]
    if isinstance(text, int):
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"{where}: {text} is not a {prefix}* value shoal knows") from None
    name = str(text)
    if not name.startswith(prefix):
        # PascalCase, as temporalio's from_json accepts: "WorkflowExecutionStarted".
        name = "".join("_" + c if c.isupper() else c for c in name).lstrip("_").upper()
        name = prefix + name
    member = cls.__members__.get(name[len(prefix):])
    if member is None:
        raise ValueError(f"{where}: {text!r} is not a {prefix}* value shoal knows")
    return member


def retry_policy_to_json(p: wire.RetryPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {"initialInterval": duration_to_json(p.initial_interval_s),
                           "backoffCoefficient": p.backoff_coefficient}
    if p.maximum_interval_s is not None:
        out["maximumInterval"] = duration_to_json(p.maximum_interval_s)
    if p.maximum_attempts:
        out["maximumAttempts"] = p.maximum_attempts
    if p.non_retryable_error_types:
        out["nonRetryableErrorTypes"] = list(p.non_retryable_error_types)
    return out


def retry_policy_from_json(obj: dict[str, Any], where: str) -> wire.RetryPolicy:
    initial = obj.get("initialInterval")
    maximum = obj.get("maximumInterval")
    return wire.RetryPolicy(
        initial_interval_s=(duration_from_json(initial, f"{where}.initialInterval") or 1.0
                            if initial is not None else 1.0),
        backoff_coefficient=float(obj.get("backoffCoefficient", 2.0)),
        maximum_interval_s=(None if maximum is None
                            else duration_from_json(maximum, f"{where}.maximumInterval")),
        maximum_attempts=int(obj.get("maximumAttempts", 0)),
        non_retryable_error_types=list(obj.get("nonRetryableErrorTypes", [])))


def _name(obj: Any) -> str:
    return obj.get("name", "") if isinstance(obj, dict) else ""


def _info_to_json(f: wire.Failure) -> tuple[str, dict[str, Any]]:
    """The ``*FailureInfo`` member Temporal keeps a failure's kind-specific fields in."""
    K = wire.FailureKind
    info: dict[str, Any] = {}
    if f.kind == K.APPLICATION:
        info = {"type": f.type, "nonRetryable": f.non_retryable}
        if f.details:
            info["details"] = payloads_to_json(f.details)
        return "applicationFailureInfo", info
    if f.kind == K.TIMEOUT:
        if f.timeout_type is not None:
            info["timeoutType"] = enum_to_json(f.timeout_type)
        if f.details:
            info["lastHeartbeatDetails"] = payloads_to_json(f.details)
        return "timeoutFailureInfo", info
    if f.kind in (K.CANCELED, K.TERMINATED, K.SERVER):
        if f.details and f.kind == K.CANCELED:
            info["details"] = payloads_to_json(f.details)
        if f.kind == K.SERVER:
            info["nonRetryable"] = f.non_retryable
        return {K.CANCELED: "canceledFailureInfo", K.TERMINATED: "terminatedFailureInfo",
                K.SERVER: "serverFailureInfo"}[f.kind], info
    for key, value in (("scheduledEventId", f.scheduled_event_id),
                       ("startedEventId", f.started_event_id)):
        if value is not None:
            info[key] = str(value)
    if f.identity is not None:
        info["identity"] = f.identity
    if f.activity_type is not None:
        info["activityType"] = {"name": f.activity_type}
    if f.activity_id is not None:
        info["activityId"] = f.activity_id
    if f.retry_state is not None:
        info["retryState"] = enum_to_json(f.retry_state)
    key = "activityFailureInfo" if f.kind == K.ACTIVITY else "childWorkflowExecutionFailureInfo"
    return key, info


def failure_to_json(f: wire.Failure) -> dict[str, Any]:
    """A failure chain as Temporal's ``failure.v1.Failure`` JSON."""
    out: dict[str, Any] = {"message": f.message, "source": f.source}
    if f.stack_trace:
        out["stackTrace"] = f.stack_trace
    if f.cause is not None:
        out["cause"] = failure_to_json(f.cause)
    key, info = _info_to_json(f)
    out[key] = info
    return out


_INFO_KINDS = {
    "applicationFailureInfo": wire.FailureKind.APPLICATION,
    "timeoutFailureInfo": wire.FailureKind.TIMEOUT,
    "canceledFailureInfo": wire.FailureKind.CANCELED,
    "terminatedFailureInfo": wire.FailureKind.TERMINATED,
    "serverFailureInfo": wire.FailureKind.SERVER,
    "activityFailureInfo": wire.FailureKind.ACTIVITY,
    "childWorkflowExecutionFailureInfo": wire.FailureKind.CHILD_WORKFLOW,
}


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def failure_from_json(obj: Any, where: str) -> wire.Failure:
    """Temporal's failure JSON as a ``wire.Failure`` (an unknown failure info: ValueError)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a failure object, got {type(obj).__name__}")
    found = [k for k in obj if k.endswith("FailureInfo")]
    unknown = [k for k in found if k not in _INFO_KINDS]
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: this failure kind has no shoal form")
    key = found[0] if found else "applicationFailureInfo"
    info = obj.get(key) or {}
    details = info.get("details") or info.get("lastHeartbeatDetails")
    timeout_type, retry_state = info.get("timeoutType"), info.get("retryState")
    return wire.Failure(
        message=obj.get("message", ""), kind=_INFO_KINDS[key],
        source=obj.get("source", ""), stack_trace=obj.get("stackTrace", ""),
        type=info.get("type", "") if key == "applicationFailureInfo" else "",
        non_retryable=bool(info.get("nonRetryable", False)),
        details=[] if details is None else payloads_from_json(details, f"{where}.{key}.details"),
        timeout_type=(None if timeout_type is None else
                      enum_from_json(wire.TimeoutType, timeout_type, f"{where}.{key}.timeoutType")),
        retry_state=(None if retry_state is None else
                     enum_from_json(wire.RetryState, retry_state, f"{where}.{key}.retryState")),
        activity_type=_name(info["activityType"]) if "activityType" in info else None,
        activity_id=info.get("activityId"),
        scheduled_event_id=_opt_int(info.get("scheduledEventId")),
        started_event_id=_opt_int(info.get("startedEventId")),
        identity=info.get("identity"),
        cause=None if obj.get("cause") is None else failure_from_json(obj["cause"], f"{where}.cause"))
