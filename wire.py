"""Every message that crosses a socket, and every error code.

Owns: the CBOR framing of client/worker requests and answers, the history event and
command types (they travel to workers and back), the gossip and replication peer messages,
and the generic dataclass <-> CBOR codec that ``store/tables.py`` reuses for persisted
records. Must not: import anything from shoal, do I/O, or know about trio.

Encoding rules (DESIGN §7): a message is a frozen dataclass; on the wire it is a CBOR map
of its fields (names as keys). ``decode`` checks every field's type and every size limit
and raises ``WireError(Code.MALFORMED, ...)``; it never lets a ``KeyError`` or
``TypeError`` escape, so a hostile peer cannot crash a node. Enum numbers and names are on
the wire: append, never renumber.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

import cbor2

PROTOCOL_VERSION = 1
DEFAULT_NAMESPACE = "default"

# Limits (DESIGN §7). A frame carries a whole request, so it may hold several payloads.
FRAME_BYTES_MAX = 8 * 1024 * 1024
PAYLOAD_BYTES_MAX = 2 * 1024 * 1024
HISTORY_EVENTS_MAX = 50_000
PENDING_ACTIVITIES_MAX = 2_000
ID_CHARS_MAX = 1_000
LIST_DEPTH_MAX = 64  # nesting depth a decoded value may reach (failure cause chains)
COLLECTION_ITEMS_MAX = 100_000


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class Code(StrEnum):
    """Every error code a node may answer with. Append, never rename."""

    MALFORMED = "MALFORMED"
    UNKNOWN_OP = "UNKNOWN_OP"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    HANDSHAKE_REQUIRED = "HANDSHAKE_REQUIRED"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    HISTORY_TOO_LONG = "HISTORY_TOO_LONG"
    TOO_MANY_PENDING_ACTIVITIES = "TOO_MANY_PENDING_ACTIVITIES"
    NAMESPACE_NOT_FOUND = "NAMESPACE_NOT_FOUND"
    WORKFLOW_ALREADY_STARTED = "WORKFLOW_ALREADY_STARTED"
    NOT_FOUND = "NOT_FOUND"
    WORKFLOW_NOT_RUNNING = "WORKFLOW_NOT_RUNNING"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"  # stale or unknown task token
    NOT_LEADER = "NOT_LEADER"
    UNAVAILABLE = "UNAVAILABLE"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    STORAGE_FULL = "STORAGE_FULL"
    CLUSTER_MISMATCH = "CLUSTER_MISMATCH"
    INTERNAL = "INTERNAL"
    QUERY_FAILED = "QUERY_FAILED"
    NON_DETERMINISTIC = "NON_DETERMINISTIC"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"  # no worker answered (a query) in time
    UNAUTHENTICATED = "UNAUTHENTICATED"  # a peer op without (valid) peer credentials


class ShoalError(Exception):
    """An operating error with a named code and a message a person can act on."""

    def __init__(self, code: Code, message: str, **details: object) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.details = code, message, details


class WireError(ShoalError):
    """Bytes or values that do not decode into a valid message."""


# --------------------------------------------------------------------------------------
# Generic codec: dataclass <-> plain CBOR values, with type checks
# --------------------------------------------------------------------------------------

T = TypeVar("T")

_Decoder = Callable[[Any, int], Any]
_DECODERS: dict[Any, _Decoder] = {}
_ENCODERS: dict[type, Callable[[Any], Any]] = {}
_TAGGED: dict[int, type] = {}
_FIELDS_OF: dict[type, list[tuple[str, Any, bool, bool]]] = {}  # per dataclass, for _build
_SCALARS = (bool, int, float, str, bytes)


def _malformed(path: str, msg: str) -> WireError:
    return WireError(Code.MALFORMED, f"{path}: {msg}")


# --- encoding -----------------------------------------------------------------------------
# Each dataclass gets an encoder built once from its fields: the hot path (every frame and
# every stored record) then runs no type introspection.


def to_plain(value: Any) -> Any:
    """Turn a message (dataclass tree) into CBOR-ready plain values.

    Dataclasses become maps keyed by field name; fields equal to ``None`` are left out to
    keep frames small. A union-typed field holding a dataclass with a ``KIND`` class
    variable is written as ``{"k": KIND, "v": {...}}`` so it can be decoded again.
    """
    if value is None:
        return None
    cls = type(value)
    if cls in _SCALARS:
        return value
    enc = _ENCODERS.get(cls)
    if enc is not None:
        return enc(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return _compile_encoder(cls)(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, _SCALARS):  # subclasses (IntEnum handled above)
        return value
    raise TypeError(f"cannot encode {cls.__name__}")


def _compile_encoder(cls: type) -> Callable[[Any], Any]:
    names = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    kind = getattr(cls, "KIND", None)
    tag = int(kind) if kind is not None and getattr(cls, "TAGGED", False) else None

    def encode(value: Any) -> Any:
        out: dict[str, Any] = {}
        for name in names:
            v = getattr(value, name)
            if v is not None:
                out[name] = v if type(v) in _SCALARS else to_plain(v)
        return out if tag is None else {"k": tag, "v": out}

    _ENCODERS[cls] = encode
    return encode


# --- decoding -----------------------------------------------------------------------------


def from_plain(tp: Any, value: Any, path: str = "$", depth: int = 0) -> Any:
    """Check ``value`` against type ``tp`` and build it; raise ``WireError`` if it does not fit.

    The error message names where in ``value`` the problem is (``$.body.input[2]: ...``).
    """
    dec = _DECODERS.get(tp) or _compile_decoder(tp)
    try:
        return dec(value, depth)
    except _Bad as bad:
        raise WireError(Code.MALFORMED, f"{path}{bad.where}: {bad.what}") from None


class _Bad(Exception):
    """A decode failure on its way up; each level prepends its part of the path.

    Paths are only built on failure, so the success path makes no strings.
    """

    def __init__(self, what: str, where: str = "") -> None:
        self.what, self.where = what, where

    def under(self, segment: str) -> _Bad:
        self.where = segment + self.where
        return self


def _compile_decoder(tp: Any) -> _Decoder:
    """Build (once per type) the function that checks and builds values of ``tp``."""
    dec = _make_decoder(tp)
    _DECODERS[tp] = dec
    return dec


def _make_decoder(tp: Any) -> _Decoder:
    origin = get_origin(tp)
    if tp is Any:
        return lambda v, d: v
    if origin is Union or origin is types.UnionType:
        return _union_decoder(tp)
    if origin in (list, tuple):
        return _list_decoder(get_args(tp)[0], origin is tuple)
    if origin is dict:
        return _dict_decoder(*get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_decoder(tp)
    if tp is float:
        return _float_decoder
    if tp is int:
        return _int_decoder
    if tp in (str, bytes, bool):
        return _exact_decoder(tp)
    if dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    raise TypeError(f"unsupported type {tp!r}")  # our bug, not the peer's


def _float_decoder(v: Any, depth: int) -> float:
    if type(v) is float:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"expected a number, got {type(v).__name__}")
    return float(v)


def _int_decoder(v: Any, depth: int) -> int:
    if type(v) is int:
        return v
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(f"expected an integer, got {type(v).__name__}")
    return v


def _exact_decoder(tp: type) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        if type(v) is not tp:
            raise _Bad(f"expected {tp.__name__}, got {type(v).__name__}")
        if tp is str and len(v) > PAYLOAD_BYTES_MAX:
            raise _Bad("string too long")
        return v

    return dec


def _enum_decoder(tp: type[enum.Enum]) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        try:
            return tp(v)
        except (ValueError, TypeError):
            raise _Bad(f"{v!r} is not a valid {tp.__name__}") from None

    return dec


def _union_decoder(tp: Any) -> _Decoder:
    args = get_args(tp)
    nullable = type(None) in args
    non_none = [a for a in args if a is not type(None)]
    if len(non_none) == 1:
        inner = non_none[0]

        def dec(v: Any, depth: int) -> Any:
            if v is None:
                if nullable:
                    return None
                raise _Bad("must not be null")
            return (_DECODERS.get(inner) or _compile_decoder(inner))(v, depth)

        return dec

    def dec_tagged(v: Any, depth: int) -> Any:
        if v is None:
            if nullable:
                return None
            raise _Bad("must not be null")
        return _from_tagged(non_none, v, depth)

    return dec_tagged


def _list_decoder(item: Any, as_tuple: bool) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        if depth > LIST_DEPTH_MAX:
            raise _Bad("nested too deeply")
        if type(v) is not list:
            raise _Bad(f"expected a list, got {type(v).__name__}")
        if len(v) > COLLECTION_ITEMS_MAX:
            raise _Bad("too many items")
        item_dec = _DECODERS.get(item) or _compile_decoder(item)
        if item is bytes:
            for i, x in enumerate(v):
                if type(x) is not bytes:
                    raise _Bad(f"expected bytes, got {type(x).__name__}", f"[{i}]")
            out = list(v)
        else:
            try:
                out = [item_dec(x, depth + 1) for x in v]
            except _Bad as bad:
                i = next(i for i, x in enumerate(v) if _fails(item_dec, x, depth + 1))
                raise bad.under(f"[{i}]") from None
        return tuple(out) if as_tuple else out

    return dec


def _dict_decoder(ktp: type, vtp: Any) -> _Decoder:
    def dec(v: Any, depth: int) -> Any:
        if depth > LIST_DEPTH_MAX:
            raise _Bad("nested too deeply")
        if type(v) is not dict:
            raise _Bad(f"expected a map, got {type(v).__name__}")
        if len(v) > COLLECTION_ITEMS_MAX:
            raise _Bad("too many items")
        val_dec = _DECODERS.get(vtp) or _compile_decoder(vtp)
        out = {}
        for k, x in v.items():
            if not isinstance(k, ktp) or (ktp is int and isinstance(k, bool)):
                raise _Bad(f"map key {k!r} must be {ktp.__name__}")
            try:
                out[k] = val_dec(x, depth + 1)
            except _Bad as bad:
                raise bad.under(f".{k}") from None
        return out

    return dec


def _dataclass_decoder(cls: type) -> _Decoder:
    hints = get_type_hints(cls)
    # (name, type, required-and-not-optional, default-is-None-when-missing)
    fields = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        fields.append((f.name, hints[f.name], has_default, _optional(hints[f.name])))
    is_tagged = getattr(cls, "TAGGED", False)
    _FIELDS_OF[cls] = fields

    def dec(v: Any, depth: int) -> Any:
        if depth > LIST_DEPTH_MAX:
            raise _Bad("nested too deeply")
        if is_tagged and type(v) is dict and "k" in v and "v" in v:
            return _from_tagged([cls], v, depth)
        return _build(cls, fields, v, depth)

    return dec


def _build(cls: type, fields: list[tuple[str, Any, bool, bool]], v: Any, depth: int) -> Any:
    if type(v) is not dict:
        raise _Bad(f"expected a map for {cls.__name__}, got {type(v).__name__}")
    kwargs: dict[str, Any] = {}
    for name, tp, has_default, optional in fields:
        if name in v:
            try:
                kwargs[name] = (_DECODERS.get(tp) or _compile_decoder(tp))(v[name], depth + 1)
            except _Bad as bad:
                raise bad.under(f".{name}") from None
        elif not has_default:
            if optional:
                kwargs[name] = None
            else:
                raise _Bad(f"missing field {name!r} of {cls.__name__}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _Bad(str(exc)) from None


def _optional(tp: Any) -> bool:
    origin = get_origin(tp)
    return (origin is Union or origin is types.UnionType) and type(None) in get_args(tp)


def _from_tagged(choices: list[Any], value: Any, depth: int) -> Any:
    if not isinstance(value, dict) or "k" not in value or "v" not in value:
        raise _Bad("expected a tagged value {k, v}")
    cls = _TAGGED.get(value["k"]) if type(value["k"]) is int else None
    if cls is None or not any(cls is c for c in choices):
        raise _Bad(f"unexpected kind {value['k']!r}")
    if cls not in _FIELDS_OF:
        _compile_decoder(cls)
    # Build directly (not via the decoder) so an inner map holding "k"/"v" is not re-read.
    return _build(cls, _FIELDS_OF[cls], value["v"], depth + 1)


def _fails(dec: Any, x: Any, depth: int) -> bool:
    try:
        dec(x, depth)
    except _Bad:
        return True
    return False


def tagged(cls: type[T]) -> type[T]:
    """Register a dataclass whose class variable ``KIND`` identifies it inside a union."""
    kind = int(cls.KIND)  # type: ignore[attr-defined]
    assert kind not in _TAGGED, f"duplicate KIND {kind} on {cls.__name__}"
    _TAGGED[kind] = cls
    cls.TAGGED = True  # type: ignore[attr-defined]
    return cls


def dumps(value: Any) -> bytes:
    """CBOR-encode a message or plain value."""
    return cbor2.dumps(to_plain(value))


def loads_plain(data: bytes, limit: int = FRAME_BYTES_MAX) -> Any:
    """Decode CBOR bytes into plain values, refusing oversize or malformed input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(Code.MALFORMED, "a frame must be binary")
    if len(data) > limit:
        raise WireError(
            Code.FRAME_TOO_LARGE, f"frame is {len(data)} bytes; the limit is {limit} bytes"
        )
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2 raises many types on hostile input; all mean one thing
        raise WireError(Code.MALFORMED, f"not valid CBOR: {type(exc).__name__}") from None


def loads(cls: type[T], data: bytes, limit: int = FRAME_BYTES_MAX) -> T:
    """Decode CBOR bytes into an instance of ``cls``, checking every field."""
    return from_plain(cls, loads_plain(data, limit))


# ======================================================================================
# Client / worker API (DESIGN §7)
# ======================================================================================


class Op(StrEnum):
    """Request operations. The dispatcher maps each to its request and response types."""

    HANDSHAKE = "handshake"
    START_WORKFLOW = "start_workflow"
    GET_RESULT = "get_result"
    DESCRIBE_WORKFLOW = "describe_workflow"
    GET_HISTORY = "get_history"
    LIST_WORKFLOWS = "list_workflows"
    POLL_WORKFLOW_TASK = "poll_workflow_task"
    COMPLETE_WORKFLOW_TASK = "complete_workflow_task"
    FAIL_WORKFLOW_TASK = "fail_workflow_task"
    POLL_ACTIVITY_TASK = "poll_activity_task"
    COMPLETE_ACTIVITY_TASK = "complete_activity_task"
    FAIL_ACTIVITY_TASK = "fail_activity_task"
    CANCEL_REQUEST = "cancel_request"  # the caller gave up on request ``request_id``
    # --- workflow interactions (issue 4) ---
    TERMINATE_WORKFLOW = "terminate_workflow"
    SIGNAL_WORKFLOW = "signal_workflow"
    SIGNAL_WITH_START_WORKFLOW = "signal_with_start_workflow"
    REQUEST_CANCEL_WORKFLOW = "request_cancel_workflow"
    QUERY_WORKFLOW = "query_workflow"
    RESPOND_QUERY_TASK = "respond_query_task"
    UPDATE_WORKFLOW = "update_workflow"
    RECORD_ACTIVITY_HEARTBEAT = "record_activity_heartbeat"
    RESPOND_ACTIVITY_TASK_CANCELED = "respond_activity_task_canceled"
    COUNT_WORKFLOWS = "count_workflows"
    # --- cluster membership (issue 5) ---
    CLUSTER_STATUS = "cluster_status"
    GOSSIP_STREAM = "gossip_stream"  # peer link: one gossip stream frame in, its answer out
    REPL_MESSAGES = "repl_messages"  # peer link: a batch of replication messages, one way
    # fault-injection drill: cut this node off from peers (gossip, replication, requests)
    NETWORK_FAULTS = "network_faults"
    # --- the cluster's peer ops (issue 7): one node asks another to act on what it owns ---
    START_TASK = "start_task"  # partition owner -> shard leader: record a matched task started
    ADD_TASKS = "add_tasks"  # shard leader -> partition owner: tasks for its matching
    START_CHILD_RUN = "start_child_run"  # parent's shard -> child's shard leader
    RECORD_CHILD_CLOSED = "record_child_closed"  # child's shard -> parent's shard leader
    CHANGE_RUN = "change_run"  # signal / cancel / terminate another workflow for a workflow
    SCAN_VISIBILITY = "scan_visibility"  # list/count: the rows of the shards a node leads


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """Envelope of every client frame: ``{id, op, body}``."""

    id: int
    op: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorBody:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """Envelope of every answer: ``{id, ok}`` or ``{id, err}``."""

    id: int
    ok: dict[str, Any] | None = None
    err: ErrorBody | None = None


def encode_request(req_id: int, op: Op, body: Any) -> bytes:
    return cbor2.dumps({"id": req_id, "op": str(op), "body": to_plain(body)})


def encode_ok(req_id: int, body: Any) -> bytes:
    return cbor2.dumps({"id": req_id, "ok": to_plain(body)})


def encode_err(req_id: int, err: ShoalError) -> bytes:
    details = {k: v for k, v in err.details.items() if isinstance(v, (str, int, float, bool))}
    return cbor2.dumps(
        {"id": req_id, "err": {"code": str(err.code), "message": err.message, "details": details}}
    )


def decode_request(data: bytes) -> Request:
    """Decode a client frame's envelope; the body is checked later against the op's type."""
    req = from_plain(Request, loads_plain(data))
    if req.id < 0:
        raise WireError(Code.MALFORMED, "request id must be >= 0")
    return req


def decode_response(data: bytes) -> Response:
    return from_plain(Response, loads_plain(data))


# --- shared value types ----------------------------------------------------------------

Payloads = list[bytes]  # one opaque payload per argument or result value


class WorkflowExecutionStatus(IntEnum):
    """Numbers as Temporal's ``enums.v1.WorkflowExecutionStatus``."""

    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7


class ParentClosePolicy(IntEnum):
    """Numbers as Temporal's: what happens to a running child when its parent closes."""

    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


class IdReusePolicy(IntEnum):
    """Numbers as Temporal's ``WorkflowIdReusePolicy``."""

    ALLOW_DUPLICATE = 1
    ALLOW_DUPLICATE_FAILED_ONLY = 2
    REJECT_DUPLICATE = 3
    TERMINATE_IF_RUNNING = 4


class TimeoutType(IntEnum):
    """Numbers as Temporal's ``TimeoutType``."""

    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


class RetryState(IntEnum):
    """Numbers as Temporal's ``RetryState``: why retries stopped."""

    IN_PROGRESS = 1
    NON_RETRYABLE_FAILURE = 2
    TIMEOUT = 3
    MAXIMUM_ATTEMPTS_REACHED = 4
    RETRY_POLICY_NOT_SET = 5
    INTERNAL_SERVER_ERROR = 6
    CANCEL_REQUESTED = 7


class FailureKind(IntEnum):
    """Which of Temporal's ``Failure.failure_info`` variants a failure carries."""

    APPLICATION = 1
    TIMEOUT = 2
    CANCELED = 3
    TERMINATED = 4
    SERVER = 5
    ACTIVITY = 6
    CHILD_WORKFLOW = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Server-applied retry policy; times in seconds. ``maximum_attempts`` 0 = unlimited."""

    initial_interval_s: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_s: float | None = None  # None: 100 x initial interval, as Temporal
    maximum_attempts: int = 0
    non_retryable_error_types: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A failure with its cause chain, as Temporal's ``failure.v1.Failure``.

    ``kind`` selects which optional fields are meaningful: APPLICATION uses ``type``,
    ``non_retryable`` and ``details``; TIMEOUT uses ``timeout_type`` and ``details`` (last
    heartbeat details); ACTIVITY uses the ``activity_*`` fields, ``scheduled_event_id``,
    ``started_event_id`` and ``retry_state``.
    """

    message: str
    kind: FailureKind = FailureKind.APPLICATION
    source: str = "shoal"
    stack_trace: str = ""
    type: str = ""
    non_retryable: bool = False
    details: Payloads = field(default_factory=list)
    timeout_type: TimeoutType | None = None
    retry_state: RetryState | None = None
    activity_type: str | None = None
    activity_id: str | None = None
    scheduled_event_id: int | None = None
    started_event_id: int | None = None
    identity: str | None = None
    cause: Failure | None = None


# --- history events (Temporal's history.v1) --------------------------------------------


class EventType(IntEnum):
    """Numbers and names as Temporal's ``enums.v1.EventType`` (without the prefix)."""

    WORKFLOW_EXECUTION_STARTED = 1
    WORKFLOW_EXECUTION_COMPLETED = 2
    WORKFLOW_EXECUTION_FAILED = 3
    WORKFLOW_EXECUTION_TIMED_OUT = 4
    WORKFLOW_TASK_SCHEDULED = 5
    WORKFLOW_TASK_STARTED = 6
    WORKFLOW_TASK_COMPLETED = 7
    WORKFLOW_TASK_TIMED_OUT = 8
    WORKFLOW_TASK_FAILED = 9
    ACTIVITY_TASK_SCHEDULED = 10
    ACTIVITY_TASK_STARTED = 11
    ACTIVITY_TASK_COMPLETED = 12
    ACTIVITY_TASK_FAILED = 13
    ACTIVITY_TASK_TIMED_OUT = 14
    ACTIVITY_TASK_CANCEL_REQUESTED = 15
    ACTIVITY_TASK_CANCELED = 16
    TIMER_STARTED = 17
    TIMER_FIRED = 18
    TIMER_CANCELED = 19
    WORKFLOW_EXECUTION_CANCEL_REQUESTED = 20
    WORKFLOW_EXECUTION_CANCELED = 21
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = 22
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = 23
    EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED = 24
    MARKER_RECORDED = 25
    WORKFLOW_EXECUTION_SIGNALED = 26
    WORKFLOW_EXECUTION_TERMINATED = 27
    WORKFLOW_EXECUTION_CONTINUED_AS_NEW = 28
    START_CHILD_WORKFLOW_EXECUTION_INITIATED = 29
    START_CHILD_WORKFLOW_EXECUTION_FAILED = 30
    CHILD_WORKFLOW_EXECUTION_STARTED = 31
    CHILD_WORKFLOW_EXECUTION_COMPLETED = 32
    CHILD_WORKFLOW_EXECUTION_FAILED = 33
    CHILD_WORKFLOW_EXECUTION_CANCELED = 34
    CHILD_WORKFLOW_EXECUTION_TIMED_OUT = 35
    CHILD_WORKFLOW_EXECUTION_TERMINATED = 36
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = 37
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = 38
    EXTERNAL_WORKFLOW_EXECUTION_SIGNALED = 39
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = 40
    WORKFLOW_EXECUTION_UPDATE_ACCEPTED = 41
    WORKFLOW_EXECUTION_UPDATE_REJECTED = 42
    WORKFLOW_EXECUTION_UPDATE_COMPLETED = 43


class WorkflowTaskFailedCause(IntEnum):
    """Subset of Temporal's ``WorkflowTaskFailedCause`` numbers that shoal produces."""

    UNHANDLED_COMMAND = 1
    BAD_SCHEDULE_ACTIVITY_ATTRIBUTES = 2
    BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES = 3
    BAD_START_TIMER_ATTRIBUTES = 4
    BAD_CANCEL_TIMER_ATTRIBUTES = 5
    BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES = 6
    BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES = 7
    BAD_RECORD_MARKER_ATTRIBUTES = 8
    BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES = 10
    BAD_CONTINUE_AS_NEW_ATTRIBUTES = 11
    BAD_START_CHILD_EXECUTION_ATTRIBUTES = 12
    BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES = 13
    BAD_SEARCH_ATTRIBUTES = 14
    BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES = 15
    BAD_UPDATE_ATTRIBUTES = 16
    START_TIMER_DUPLICATE_ID = 9
    WORKFLOW_WORKER_UNHANDLED_FAILURE = 22
    NON_DETERMINISTIC_ERROR = 24
    BAD_BINARY = 25
    RESET_STICKY_TASK_QUEUE = 26
    SCHEDULE_ACTIVITY_DUPLICATE_ID = 27
    PENDING_ACTIVITIES_LIMIT_EXCEEDED = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionStartedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_STARTED
    workflow_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float = 10.0
    attempt: int = 1
    first_execution_run_id: str = ""
    continued_execution_run_id: str | None = None
    original_execution_run_id: str = ""
    identity: str = ""
    request_id: str = ""
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)
    workflow_execution_expiration_time: float | None = None
    parent_workflow_id: str | None = None
    parent_run_id: str | None = None
    parent_initiated_event_id: int | None = None
    last_completion_result: Payloads | None = None
    continued_failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionCompletedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_COMPLETED
    result: Payloads = field(default_factory=list)
    workflow_task_completed_event_id: int = 0
    new_execution_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_FAILED
    failure: Failure
    retry_state: RetryState = RetryState.RETRY_POLICY_NOT_SET
    workflow_task_completed_event_id: int = 0
    new_execution_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionTimedOutAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_TIMED_OUT
    retry_state: RetryState = RetryState.TIMEOUT
    new_execution_run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskScheduledAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_SCHEDULED
    task_queue: str
    start_to_close_timeout_s: float
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskStartedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_STARTED
    scheduled_event_id: int
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskCompletedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_COMPLETED
    scheduled_event_id: int
    started_event_id: int
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskTimedOutAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_TIMED_OUT
    scheduled_event_id: int
    started_event_id: int
    timeout_type: TimeoutType = TimeoutType.START_TO_CLOSE


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskFailedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_TASK_FAILED
    scheduled_event_id: int
    started_event_id: int
    cause: WorkflowTaskFailedCause = WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE
    failure: Failure | None = None
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskScheduledAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_SCHEDULED
    activity_id: str
    activity_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    schedule_to_close_timeout_s: float | None = None
    schedule_to_start_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    workflow_task_completed_event_id: int = 0
    retry_policy: RetryPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskStartedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_STARTED
    scheduled_event_id: int
    identity: str = ""
    request_id: str = ""
    attempt: int = 1
    last_failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskCompletedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_COMPLETED
    result: Payloads = field(default_factory=list)
    scheduled_event_id: int
    started_event_id: int
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskFailedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_FAILED
    failure: Failure
    scheduled_event_id: int
    started_event_id: int
    identity: str = ""
    retry_state: RetryState = RetryState.RETRY_POLICY_NOT_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskTimedOutAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_TIMED_OUT
    failure: Failure  # kind TIMEOUT, cause = last attempt's failure if any
    scheduled_event_id: int
    started_event_id: int
    retry_state: RetryState = RetryState.TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerStartedAttributes:
    KIND: ClassVar[int] = EventType.TIMER_STARTED
    timer_id: str
    start_to_fire_timeout_s: float
    workflow_task_completed_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFiredAttributes:
    KIND: ClassVar[int] = EventType.TIMER_FIRED
    timer_id: str
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerCanceledAttributes:
    KIND: ClassVar[int] = EventType.TIMER_CANCELED
    timer_id: str
    started_event_id: int
    workflow_task_completed_event_id: int = 0
    identity: str = ""


# --- history engine additions (node/history) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionTerminatedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_TERMINATED
    reason: str = ""
    details: Payloads = field(default_factory=list)
    identity: str = ""



# --- workflow interactions (issue 4: signals, cancellation, continue-as-new, markers) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionSignaledAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_SIGNALED
    signal_name: str
    input: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionCancelRequestedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED
    cause: str = ""  # the reason the requester gave
    identity: str = ""
    external_workflow_id: str | None = None  # set when a parent cancels its child


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionCanceledAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_CANCELED
    workflow_task_completed_event_id: int = 0
    details: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskCancelRequestedAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_CANCEL_REQUESTED
    scheduled_event_id: int
    workflow_task_completed_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTaskCanceledAttributes:
    KIND: ClassVar[int] = EventType.ACTIVITY_TASK_CANCELED
    details: Payloads = field(default_factory=list)
    latest_cancel_requested_event_id: int
    scheduled_event_id: int
    started_event_id: int  # 0: cancelled before an attempt started
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecution:
    workflow_id: str
    run_id: str = ""  # empty: the current run


# --- child workflows and external workflows (issue 4) ---------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildWorkflowExecutionInitiatedAttributes:
    KIND: ClassVar[int] = EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED
    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE
    workflow_task_completed_event_id: int = 0
    workflow_id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED
    namespace: str
    workflow_id: str
    workflow_type: str
    cause: str  # WORKFLOW_ALREADY_EXISTS
    initiated_event_id: int
    workflow_task_completed_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionStartedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_STARTED
    namespace: str
    initiated_event_id: int
    workflow_execution: WorkflowExecution
    workflow_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionCompletedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED
    result: Payloads = field(default_factory=list)
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_FAILED
    failure: Failure
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int
    retry_state: RetryState = RetryState.RETRY_POLICY_NOT_SET


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionCanceledAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_CANCELED
    details: Payloads = field(default_factory=list)
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionTimedOutAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int
    retry_state: RetryState = RetryState.TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildWorkflowExecutionTerminatedAttributes:
    KIND: ClassVar[int] = EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED
    namespace: str
    workflow_execution: WorkflowExecution
    workflow_type: str
    initiated_event_id: int
    started_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelExternalWorkflowExecutionInitiatedAttributes:
    KIND: ClassVar[int] = EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    workflow_task_completed_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution
    child_workflow_only: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelExternalWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    cause: str  # EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND
    workflow_task_completed_event_id: int = 0
    namespace: str
    workflow_execution: WorkflowExecution
    initiated_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalWorkflowExecutionCancelRequestedAttributes:
    KIND: ClassVar[int] = EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    initiated_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalExternalWorkflowExecutionInitiatedAttributes:
    KIND: ClassVar[int] = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    workflow_task_completed_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution
    signal_name: str
    input: Payloads = field(default_factory=list)
    child_workflow_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalExternalWorkflowExecutionFailedAttributes:
    KIND: ClassVar[int] = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    cause: str
    workflow_task_completed_event_id: int = 0
    namespace: str
    workflow_execution: WorkflowExecution
    initiated_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalWorkflowExecutionSignaledAttributes:
    KIND: ClassVar[int] = EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
    initiated_event_id: int
    namespace: str
    workflow_execution: WorkflowExecution


# --- updates (issue 4) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRequest:
    """An update as the client sent it; a workflow task carries it to the worker."""

    update_id: str
    name: str
    input: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateOutcome:
    """How an update ended: ``result``, or ``failure`` (rejected by the validator, or the
    handler raised)."""

    result: Payloads | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionUpdateAcceptedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    accepted_request: UpdateRequest  # replay re-runs the handler from this


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionUpdateCompletedAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED
    update_id: str
    accepted_event_id: int
    outcome: UpdateOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertWorkflowSearchAttributesAttributes:
    KIND: ClassVar[int] = EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    workflow_task_completed_event_id: int
    search_attributes: dict[str, bytes] = field(default_factory=dict)  # b"": remove the key


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkerRecordedAttributes:
    KIND: ClassVar[int] = EventType.MARKER_RECORDED
    marker_name: str
    details: dict[str, Payloads] = field(default_factory=dict)
    workflow_task_completed_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionContinuedAsNewAttributes:
    KIND: ClassVar[int] = EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    new_execution_run_id: str
    workflow_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    workflow_task_completed_event_id: int = 0

EventAttributes = Union[
    WorkflowExecutionStartedAttributes,
    WorkflowExecutionCompletedAttributes,
    WorkflowExecutionFailedAttributes,
    WorkflowExecutionTimedOutAttributes,
    WorkflowTaskScheduledAttributes,
    WorkflowTaskStartedAttributes,
    WorkflowTaskCompletedAttributes,
    WorkflowTaskTimedOutAttributes,
    WorkflowTaskFailedAttributes,
    ActivityTaskScheduledAttributes,
    ActivityTaskStartedAttributes,
    ActivityTaskCompletedAttributes,
    ActivityTaskFailedAttributes,
    ActivityTaskTimedOutAttributes,
    TimerStartedAttributes,
    TimerFiredAttributes,
    TimerCanceledAttributes,
    WorkflowExecutionTerminatedAttributes,
    WorkflowExecutionSignaledAttributes,
    WorkflowExecutionCancelRequestedAttributes,
    WorkflowExecutionCanceledAttributes,
    MarkerRecordedAttributes,
    WorkflowExecutionContinuedAsNewAttributes,
    ActivityTaskCancelRequestedAttributes,
    ActivityTaskCanceledAttributes,
    StartChildWorkflowExecutionInitiatedAttributes,
    StartChildWorkflowExecutionFailedAttributes,
    ChildWorkflowExecutionStartedAttributes,
    ChildWorkflowExecutionCompletedAttributes,
    ChildWorkflowExecutionFailedAttributes,
    ChildWorkflowExecutionCanceledAttributes,
    ChildWorkflowExecutionTimedOutAttributes,
    ChildWorkflowExecutionTerminatedAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedAttributes,
    RequestCancelExternalWorkflowExecutionFailedAttributes,
    ExternalWorkflowExecutionCancelRequestedAttributes,
    SignalExternalWorkflowExecutionInitiatedAttributes,
    SignalExternalWorkflowExecutionFailedAttributes,
    ExternalWorkflowExecutionSignaledAttributes,
    WorkflowExecutionUpdateAcceptedAttributes,
    WorkflowExecutionUpdateCompletedAttributes,
    UpsertWorkflowSearchAttributesAttributes,
]

for _cls in get_args(EventAttributes):
    tagged(_cls)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEvent:
    """One history event. ``event_time`` is seconds since the epoch (UTC)."""

    event_id: int
    event_time: float
    event_type: EventType
    attributes: EventAttributes

    def __post_init__(self) -> None:
        if int(self.attributes.KIND) != int(self.event_type):
            raise ValueError(
                f"event_type {self.event_type!r} does not match {type(self.attributes).__name__}"
            )


# --- commands (Temporal's command.v1), worker -> server --------------------------------


class CommandType(IntEnum):
    """Numbers as Temporal's ``enums.v1.CommandType``. Tag numbers are 100 + this."""

    SCHEDULE_ACTIVITY_TASK = 1
    REQUEST_CANCEL_ACTIVITY_TASK = 2
    START_TIMER = 3
    COMPLETE_WORKFLOW_EXECUTION = 4
    FAIL_WORKFLOW_EXECUTION = 5
    CANCEL_TIMER = 6
    CANCEL_WORKFLOW_EXECUTION = 7
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION = 8
    RECORD_MARKER = 9
    CONTINUE_AS_NEW_WORKFLOW_EXECUTION = 10
    START_CHILD_WORKFLOW_EXECUTION = 11
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION = 12
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = 13
    # Temporal carries update answers as protocol messages beside the commands; shoal makes
    # them commands (numbers past Temporal's range).
    ACCEPT_UPDATE = 50
    REJECT_UPDATE = 51
    COMPLETE_UPDATE = 52


_COMMAND_TAG = 100  # keeps command tags apart from event-attribute tags in one registry


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleActivityTaskCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.SCHEDULE_ACTIVITY_TASK
    activity_id: str
    activity_type: str
    task_queue: str
    input: Payloads = field(default_factory=list)
    schedule_to_close_timeout_s: float | None = None
    schedule_to_start_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    retry_policy: RetryPolicy | None = None
    # The completing worker can run this activity now (Temporal's eager activity execution):
    # the node may start it in the same entry and return it in the completion's answer.
    request_eager_execution: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTimerCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.START_TIMER
    timer_id: str
    start_to_fire_timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.START_CHILD_WORKFLOW_EXECUTION
    workflow_id: str
    workflow_type: str
    task_queue: str = ""  # empty: the parent's
    input: Payloads = field(default_factory=list)
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE
    workflow_id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelExternalWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION
    workflow_id: str
    run_id: str = ""
    child_workflow_only: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalExternalWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION
    workflow_id: str
    run_id: str = ""
    signal_name: str
    input: Payloads = field(default_factory=list)
    child_workflow_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertWorkflowSearchAttributesCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    search_attributes: dict[str, bytes]  # an empty payload removes the attribute


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptUpdateCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.ACCEPT_UPDATE
    request: UpdateRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectUpdateCommand:
    """The validator refused the update: nothing is recorded; the caller gets ``failure``."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.REJECT_UPDATE
    update_id: str
    failure: Failure


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteUpdateCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.COMPLETE_UPDATE
    update_id: str
    outcome: UpdateOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelActivityTaskCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.REQUEST_CANCEL_ACTIVITY_TASK
    scheduled_event_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimerCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.CANCEL_TIMER
    timer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.COMPLETE_WORKFLOW_EXECUTION
    result: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailWorkflowExecutionCommand:
    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.FAIL_WORKFLOW_EXECUTION
    failure: Failure



@dataclass(frozen=True, slots=True, kw_only=True)
class CancelWorkflowExecutionCommand:
    """Close the run as canceled (the workflow accepted a cancel request)."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.CANCEL_WORKFLOW_EXECUTION
    details: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMarkerCommand:
    """Record a marker (``workflow.patched`` writes one named ``core_patch``)."""

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.RECORD_MARKER
    marker_name: str
    details: dict[str, Payloads] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinueAsNewWorkflowExecutionCommand:
    """Close the run and start a new run of the same workflow id with fresh history.

    Empty ``workflow_type``/``task_queue`` and None timeouts mean "as the current run".
    """

    KIND: ClassVar[int] = _COMMAND_TAG + CommandType.CONTINUE_AS_NEW_WORKFLOW_EXECUTION
    workflow_type: str = ""
    task_queue: str = ""
    input: Payloads = field(default_factory=list)
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    memo: dict[str, bytes] | None = None
    search_attributes: dict[str, bytes] | None = None
    retry_policy: RetryPolicy | None = None

Command = Union[
    ScheduleActivityTaskCommand,
    StartTimerCommand,
    CancelTimerCommand,
    CompleteWorkflowExecutionCommand,
    FailWorkflowExecutionCommand,
    CancelWorkflowExecutionCommand,
    RecordMarkerCommand,
    ContinueAsNewWorkflowExecutionCommand,
    RequestCancelActivityTaskCommand,
    StartChildWorkflowExecutionCommand,
    RequestCancelExternalWorkflowExecutionCommand,
    SignalExternalWorkflowExecutionCommand,
    AcceptUpdateCommand,
    RejectUpdateCommand,
    CompleteUpdateCommand,
    UpsertWorkflowSearchAttributesCommand,
]

for _cls in get_args(Command):
    tagged(_cls)


# --- request and response bodies -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRequest:
    protocol_version: int
    namespace: str = DEFAULT_NAMESPACE
    identity: str = ""
    credentials: bytes | None = None
    # A node forwarding a request it does not own: the answering node serves it or answers
    # NOT_LEADER with a hint (details ``leader``/``addr``); it never forwards it again.
    peer: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeResponse:
    protocol_version: int
    node_id: str
    cluster_name: str
    num_shards: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflowRequest:
    workflow_id: str
    workflow_type: str
    task_queue: str
    request_id: str  # a retried start with the same request id returns the same run
    input: Payloads = field(default_factory=list)
    id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    workflow_execution_timeout_s: float | None = None
    workflow_run_timeout_s: float | None = None
    workflow_task_timeout_s: float | None = None
    retry_policy: RetryPolicy | None = None
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflowResponse:
    run_id: str
    started: bool = True  # False when a retried request id found the run it had started


@dataclass(frozen=True, slots=True, kw_only=True)
class GetResultRequest:
    execution: WorkflowExecution
    wait_s: float = 30.0  # long-poll bound; the answer says RUNNING if it passes
    follow_runs: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GetResultResponse:
    run_id: str
    status: WorkflowExecutionStatus
    result: Payloads | None = None
    failure: Failure | None = None
    new_execution_run_id: str | None = None  # set when the run continued as new or retried


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecutionInfo:
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: float
    close_time: float | None = None
    execution_time: float | None = None
    history_length: int = 0
    memo: dict[str, bytes] = field(default_factory=dict)
    search_attributes: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingActivityInfo:
    activity_id: str
    activity_type: str
    state: str  # SCHEDULED | STARTED | BACKING_OFF
    attempt: int
    scheduled_time: float
    last_started_time: float | None = None
    last_failure: Failure | None = None
    maximum_attempts: int = 0
    heartbeat_details: Payloads | None = None
    last_heartbeat_time: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingWorkflowTaskInfo:
    state: str  # SCHEDULED | STARTED
    scheduled_time: float
    attempt: int
    started_time: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeWorkflowRequest:
    execution: WorkflowExecution


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeWorkflowResponse:
    info: WorkflowExecutionInfo
    pending_activities: list[PendingActivityInfo] = field(default_factory=list)
    pending_workflow_task: PendingWorkflowTaskInfo | None = None
    last_workflow_task_failure: Failure | None = None  # e.g. a non-determinism error


@dataclass(frozen=True, slots=True, kw_only=True)
class GetHistoryRequest:
    execution: WorkflowExecution
    next_page_token: bytes | None = None
    page_size: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class GetHistoryResponse:
    events: list[HistoryEvent]
    next_page_token: bytes | None = None  # None: no more events


@dataclass(frozen=True, slots=True, kw_only=True)
class ListWorkflowsRequest:
    status: WorkflowExecutionStatus | None = None
    workflow_type: str | None = None
    task_queue: str | None = None
    query: str = ""  # Temporal-style list filter (node/list_filter.py); ANDed with the rest
    page_size: int = 100
    next_page_token: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListWorkflowsResponse:
    executions: list[WorkflowExecutionInfo]
    next_page_token: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWorkflowsRequest:
    query: str = ""  # the list filter; ``GROUP BY ExecutionStatus`` fills ``groups``


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWorkflowsGroup:
    status: WorkflowExecutionStatus
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWorkflowsResponse:
    count: int
    groups: list[CountWorkflowsGroup] = field(default_factory=list)  # by count, largest first


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWorkflowTaskRequest:
    task_queue: str
    identity: str = ""
    wait_s: float = 30.0  # long-poll bound; an empty answer (no task_token) after it


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowQuery:
    query_type: str
    query_args: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTask:
    """A workflow task handed to a worker: the history it must replay up to ``started_event_id``."""

    task_token: bytes
    workflow_id: str
    run_id: str
    workflow_type: str
    attempt: int
    started_event_id: int
    previous_started_event_id: int
    history: list[HistoryEvent]
    scheduled_time: float
    started_time: float
    # A query task (no token, records nothing): answer it with RESPOND_QUERY_TASK.
    query_id: str = ""
    query: WorkflowQuery | None = None
    # Updates waiting for this run: the worker validates and accepts or rejects each.
    updates: list[UpdateRequest] = field(default_factory=list)
    # Taken from the worker's sticky queue: ``history`` holds only the events after
    # ``previous_started_event_id`` (the worker has the rest cached).
    sticky: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PollWorkflowTaskResponse:
    task: WorkflowTask | None = None  # None: the long poll ended with no task


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteWorkflowTaskRequest:
    task_token: bytes
    commands: list[Command] = field(default_factory=list)
    identity: str = ""
    # Sticky execution: the worker keeps the run cached; send its next workflow task to this
    # queue with only new events, falling back to the normal queue after the timeout.
    sticky_task_queue: str = ""
    sticky_schedule_to_start_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteWorkflowTaskResponse:
    """Activities started eagerly for the completing worker (see ``request_eager_execution``)."""

    activity_tasks: list[ActivityTask] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailWorkflowTaskRequest:
    task_token: bytes
    cause: WorkflowTaskFailedCause
    failure: Failure
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PollActivityTaskRequest:
    task_queue: str
    identity: str = ""
    wait_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityTask:
    task_token: bytes
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: Payloads
    attempt: int
    scheduled_time: float
    current_attempt_scheduled_time: float
    started_time: float
    schedule_to_close_timeout_s: float | None = None
    start_to_close_timeout_s: float | None = None
    heartbeat_timeout_s: float | None = None
    heartbeat_details: Payloads | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PollActivityTaskResponse:
    task: ActivityTask | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteActivityTaskRequest:
    task_token: bytes
    result: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailActivityTaskRequest:
    task_token: bytes
    failure: Failure
    last_heartbeat_details: Payloads | None = None
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Empty:
    """Body of an answer that carries nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequestRequest:
    """Stop running request ``request_id`` of this connection (e.g. a worker's long poll it
    no longer wants: without this, a task could be handed to a poll nobody awaits)."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskToken:
    """What a task token names; encoded with ``dumps`` and opaque to workers.

    ``scheduled_event_id`` and ``attempt`` fence stale tokens: a completion for an attempt
    the history no longer expects answers ``TASK_NOT_FOUND``.
    """

    namespace: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    attempt: int
    started_event_id: int = 0
    activity_id: str | None = None



# --- workflow interaction requests (issue 4) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminateWorkflowRequest:
    execution: WorkflowExecution
    reason: str = ""
    details: Payloads = field(default_factory=list)
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalWorkflowRequest:
    execution: WorkflowExecution
    signal_name: str
    input: Payloads = field(default_factory=list)
    request_id: str = ""  # a retried signal with the same request id is recorded once
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalWithStartWorkflowRequest:
    """Signal the running workflow ``start.workflow_id``, starting it first if needed."""

    start: StartWorkflowRequest
    signal_name: str
    signal_input: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelWorkflowRequest:
    execution: WorkflowExecution
    reason: str = ""
    request_id: str = ""
    identity: str = ""

@dataclass(frozen=True, slots=True, kw_only=True)
class QueryWorkflowRequest:
    execution: WorkflowExecution
    query: WorkflowQuery
    timeout_s: float = 10.0  # how long to wait for a worker's answer


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryWorkflowResponse:
    result: Payloads = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class RespondQueryTaskRequest:
    """A worker's answer to a query task: ``result``, or ``error`` (a message) if it failed."""

    query_id: str
    result: Payloads = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateWorkflowRequest:
    execution: WorkflowExecution
    request: UpdateRequest
    wait_s: float = 60.0  # how long to wait for the outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateWorkflowResponse:
    run_id: str
    outcome: UpdateOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordActivityHeartbeatRequest:
    task_token: bytes
    details: Payloads | None = None  # None: keep the last details
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordActivityHeartbeatResponse:
    cancel_requested: bool = False  # the workflow asked to cancel this activity


@dataclass(frozen=True, slots=True, kw_only=True)
class RespondActivityTaskCanceledRequest:
    task_token: bytes
    details: Payloads = field(default_factory=list)
    identity: str = ""


# --- cluster membership (issue 5) ---


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatusRequest:
    """Ask a node for its view of the cluster (``shoal cluster status``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterMember:
    """One member as the answering node sees it."""

    name: str  # the member's node id
    state: str  # "alive", "suspect", "dead" or "left"
    incarnation: int
    gossip_addr: str  # HOST:PORT of its UDP probes and peer link
    api_addr: str  # ws:// address for clients and workers
    last_contact_age_s: float | None = None  # since it last answered us; None: never (or us)
    is_self: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStatusResponse:
    node: str  # the answering node's id
    cluster_name: str
    num_shards: int
    members: list[ClusterMember] = field(default_factory=list)
    health_score: int = 0  # Lifeguard local health: 0 is healthy
    stats: dict[str, int] = field(default_factory=dict)  # gossip counters, by name
    # Peer gossip addresses a fault drill (``Op.NETWORK_FAULTS``) cuts us off from; normally
    # empty. Shown so a forgotten drill is not mistaken for a network fault.
    blocked_addrs: list[str] = field(default_factory=list)
    # What the answering node owns (issue 7): the shards it leads, those it only replicates,
    # those it leads with fewer voters than the replication factor the live members allow,
    # the task queues its matching holds, and routing counters (requests forwarded, ...).
    shards_led: list[int] = field(default_factory=list)
    shards_replicated: list[int] = field(default_factory=list)
    shards_under_replicated: list[int] = field(default_factory=list)
    task_queues: list[str] = field(default_factory=list)
    routing: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipStreamRequest:
    """A peer's gossip stream message (push-pull, fallback ping) over the peer link.
    ``frame`` is an ``encode_gossip`` frame, authenticated like a UDP packet.
    ``source_addr`` is the sender's advertised gossip address (``HOST:PORT``; empty from an
    older sender); only a fault drill looks at it, since a fallback ping does not name its
    sender. It is not covered by the frame's MAC, so it decides nothing else."""

    frame: bytes
    source_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplMessagesRequest:
    """A batch of replication messages from node ``src`` over the peer link, in send order.
    Each frame is an ``encode_repl`` frame; a frame that does not decode is dropped alone."""

    src: str
    frames: list[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipStreamResponse:
    """The answer frame; empty when there is none (or the request was dropped)."""

    frame: bytes = b""


NETWORK_FAULT_ADDRS_MAX = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkFaultsRequest:
    """A FAULT-INJECTION DRILL, not for normal operation: make this node behave as if the
    network between it and the peers at ``blocked_addrs`` were cut. Until the next request,
    it drops UDP gossip to and from those peers and neither sends gossip stream messages
    (push-pull, fallback pings) to them nor accepts theirs; drops the replication messages
    it would send them; fails the requests it would forward to them (and task hand-offs)
    as a lost connection would; and closes their peer connections, so what they forward
    here is never served. Clients and workers connected to this node are not affected.
    Run it on every node of one side, naming the other side, to partition a cluster; an
    empty list clears the drill. Each request replaces the last. Addresses are members'
    gossip addresses (``gossip_addr`` in ``shoal cluster status``), ``HOST:PORT``.
    Answered with :class:`Empty`; a bad address is ``INVALID_ARGUMENT``."""

    blocked_addrs: list[str] = field(default_factory=list)


# --- the cluster's peer ops (issue 7) ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDispatch:
    """A workflow or activity task (or a query, ``query_id`` set) handed to matching."""

    shard: int
    task_id: int
    kind: int  # records.TransferKind: 1 workflow task, 2 activity task
    namespace: str
    workflow_id: str
    run_id: str
    task_queue: str
    scheduled_event_id: int
    attempt: int
    query_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTaskRequest:
    """The partition owner matched ``task`` to a poller: record it started (shard leader)."""

    task: TaskDispatch
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTaskResponse:
    """What the poller gets; both None: the task went stale (already started, or gone)."""

    workflow_task: WorkflowTask | None = None
    activity_task: ActivityTask | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddTasksRequest:
    """Tasks for the receiving node's matching (it owns their partitions, as the sender
    sees the ring); duplicates are dropped by (shard, task_id)."""

    tasks: list[TaskDispatch] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartChildRunRequest:
    """Start the child a parent's StartChildWorkflowExecutionInitiated event names."""

    request: StartWorkflowRequest
    parent_namespace: str
    parent: WorkflowExecution
    initiated_event_id: int
    run_id: str  # the child's run id if this call starts it


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildClose:
    """How a child's chain ended, as its parent records it."""

    run_id: str
    status: WorkflowExecutionStatus
    result: Payloads | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordChildClosedRequest:
    parent: WorkflowExecution
    initiated_event_id: int
    child: ChildClose


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRunRequest:
    """A workflow signals, cancels or terminates another one (``action``: ``signal``,
    ``cancel`` or ``terminate``). With ``expect_parent_workflow_id``, only a child of that
    parent (and of event ``expect_initiated_event_id`` unless it is 0) is changed."""

    execution: WorkflowExecution
    action: str
    signal_name: str = ""
    input: Payloads = field(default_factory=list)
    reason: str = ""
    identity: str = ""
    request_id: str = ""
    expect_parent_workflow_id: str | None = None
    expect_initiated_event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanVisibilityRequest:
    """The visibility rows of ``shards`` (those the asked node leads) that a list request
    selects; the asking node merges, sorts and pages."""

    shards: list[int]
    request: ListWorkflowsRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanVisibilityResponse:
    executions: list[WorkflowExecutionInfo] = field(default_factory=list)
    missing_shards: list[int] = field(default_factory=list)  # not led there after all


# Ops only another node may send: on a connection whose handshake says ``peer`` (and, when
# the cluster has a key, proves it with ``peer_credentials``). GOSSIP_STREAM is not among
# them: its frames carry their own MAC, and a node with the wrong key must get far enough
# to be told CLUSTER_MISMATCH.
PEER_OPS = frozenset({
    Op.REPL_MESSAGES, Op.START_TASK, Op.ADD_TASKS, Op.START_CHILD_RUN,
    Op.RECORD_CHILD_CLOSED, Op.CHANGE_RUN, Op.SCAN_VISIBILITY,
})


def peer_credentials(cluster_key: bytes | None, identity: str) -> bytes | None:
    """What a node sends as ``HandshakeRequest.credentials`` on a peer connection: an
    HMAC-SHA256 of its identity under the cluster key (None without a key). Like gossip's
    MAC, it proves membership, not secrecy: the link itself is not encrypted."""
    if cluster_key is None:
        return None
    import hashlib
    import hmac
    return hmac.new(cluster_key, b"shoal-peer-v1\x00" + identity.encode(), hashlib.sha256).digest()


# Request and response body type of each op: the dispatcher's contract.
OP_TYPES: dict[Op, tuple[type, type]] = {
    Op.HANDSHAKE: (HandshakeRequest, HandshakeResponse),
    Op.START_WORKFLOW: (StartWorkflowRequest, StartWorkflowResponse),
    Op.GET_RESULT: (GetResultRequest, GetResultResponse),
    Op.DESCRIBE_WORKFLOW: (DescribeWorkflowRequest, DescribeWorkflowResponse),
    Op.GET_HISTORY: (GetHistoryRequest, GetHistoryResponse),
    Op.LIST_WORKFLOWS: (ListWorkflowsRequest, ListWorkflowsResponse),
    Op.POLL_WORKFLOW_TASK: (PollWorkflowTaskRequest, PollWorkflowTaskResponse),
    Op.COMPLETE_WORKFLOW_TASK: (CompleteWorkflowTaskRequest, CompleteWorkflowTaskResponse),
    Op.FAIL_WORKFLOW_TASK: (FailWorkflowTaskRequest, Empty),
    Op.POLL_ACTIVITY_TASK: (PollActivityTaskRequest, PollActivityTaskResponse),
    Op.COMPLETE_ACTIVITY_TASK: (CompleteActivityTaskRequest, Empty),
    Op.FAIL_ACTIVITY_TASK: (FailActivityTaskRequest, Empty),
    Op.CANCEL_REQUEST: (CancelRequestRequest, Empty),
    # workflow interactions (issue 4)
    Op.TERMINATE_WORKFLOW: (TerminateWorkflowRequest, Empty),
    Op.SIGNAL_WORKFLOW: (SignalWorkflowRequest, Empty),
    Op.SIGNAL_WITH_START_WORKFLOW: (SignalWithStartWorkflowRequest, StartWorkflowResponse),
    Op.REQUEST_CANCEL_WORKFLOW: (RequestCancelWorkflowRequest, Empty),
    Op.QUERY_WORKFLOW: (QueryWorkflowRequest, QueryWorkflowResponse),
    Op.RESPOND_QUERY_TASK: (RespondQueryTaskRequest, Empty),
    Op.UPDATE_WORKFLOW: (UpdateWorkflowRequest, UpdateWorkflowResponse),
    Op.RECORD_ACTIVITY_HEARTBEAT: (RecordActivityHeartbeatRequest, RecordActivityHeartbeatResponse),
    Op.RESPOND_ACTIVITY_TASK_CANCELED: (RespondActivityTaskCanceledRequest, Empty),
    Op.COUNT_WORKFLOWS: (CountWorkflowsRequest, CountWorkflowsResponse),
    Op.CLUSTER_STATUS: (ClusterStatusRequest, ClusterStatusResponse),
    Op.GOSSIP_STREAM: (GossipStreamRequest, GossipStreamResponse),
    Op.REPL_MESSAGES: (ReplMessagesRequest, Empty),
    Op.NETWORK_FAULTS: (NetworkFaultsRequest, Empty),
    Op.START_TASK: (StartTaskRequest, StartTaskResponse),
    Op.ADD_TASKS: (AddTasksRequest, Empty),
    Op.START_CHILD_RUN: (StartChildRunRequest, StartWorkflowResponse),
    Op.RECORD_CHILD_CLOSED: (RecordChildClosedRequest, Empty),
    Op.CHANGE_RUN: (ChangeRunRequest, Empty),
    Op.SCAN_VISIBILITY: (ScanVisibilityRequest, ScanVisibilityResponse),
}


def decode_body(op: Op, body: Any) -> Any:
    """Check a request body against its op's request type."""
    return from_plain(OP_TYPES[op][0], body, f"{op}.body")


def payloads_size(payloads: typing.Iterable[bytes] | None) -> int:
    return sum(len(p) for p in payloads or ())


# ======================================================================================
# Gossip peer messages (issue 5) — appended below this line
# ======================================================================================

import hashlib as _hashlib  # noqa: E402  (only the gossip section needs these)
import hmac as _hmac  # noqa: E402

# Gossip frames (DESIGN §5). A frame is one header byte, then (when a cluster key is set)
# a 32-byte HMAC-SHA256 over header + body, then the CBOR body. The header names the
# frame's kind so a shell can tell UDP packets from push-pull stream messages, and whether
# it is authenticated, so a keyed node never accepts an unkeyed frame and vice versa.
GOSSIP_MAC_BYTES = 32
GOSSIP_PACKET_PLAIN = 0x10
GOSSIP_PACKET_MAC = 0x11
GOSSIP_STREAM_PLAIN = 0x20
GOSSIP_STREAM_MAC = 0x21
UDP_PACKET_BYTES_MAX = 65_507  # the largest UDP payload over IPv4
# Frame bytes besides the messages themselves: header, MAC, and a CBOR array header for up
# to 65 535 items. Used to fit piggybacked broadcasts under the configured packet size.
GOSSIP_PACKET_OVERHEAD_BYTES = 1 + GOSSIP_MAC_BYTES + 3
_U64 = 1 << 64


class GossipKind(IntEnum):
    """Tag numbers of gossip messages (200-299). Append, never renumber."""

    PING = 200
    INDIRECT_PING = 201
    ACK = 202
    NACK = 203
    ALIVE = 204
    SUSPECT = 205
    DEAD = 206
    PUSH_PULL_REQUEST = 207
    PUSH_PULL_RESPONSE = 208


class MemberState(IntEnum):
    """A member's state as SWIM sees it (memberlist's numbering)."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value < _U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberMeta:
    """What a member tells the cluster about itself: where clients reach it, and the
    cluster identity a joiner must match (DESIGN §3: NUM_SHARDS is checked on join)."""

    api_addr: str
    cluster_name: str
    num_shards: int
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Direct probe. ``target`` names the member meant, so a node now living at a dead
    member's address does not answer for it."""

    KIND: ClassVar[int] = GossipKind.PING
    seq: int
    target: str

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndirectPing:
    """Ask the receiver to probe ``target`` for us and forward its ack (SWIM's ping-req).
    With ``nack`` set the receiver answers :class:`Nack` if the target stays silent, which
    tells the requester that the path to the helper works (Lifeguard)."""

    KIND: ClassVar[int] = GossipKind.INDIRECT_PING
    seq: int
    target: str
    target_addr: str
    nack: bool = True

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    KIND: ClassVar[int] = GossipKind.ACK
    seq: int

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack:
    KIND: ClassVar[int] = GossipKind.NACK
    seq: int

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alive:
    """``node`` is alive at ``incarnation``; also how a node announces itself and its meta."""

    KIND: ClassVar[int] = GossipKind.ALIVE
    node: str
    incarnation: int
    addr: str
    meta: MemberMeta

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspect:
    """``source`` suspects ``node`` at ``incarnation``."""

    KIND: ClassVar[int] = GossipKind.SUSPECT
    node: str
    incarnation: int
    source: str

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dead:
    """``source`` declares ``node`` dead at ``incarnation``; ``source == node`` means a
    graceful leave."""

    KIND: ClassVar[int] = GossipKind.DEAD
    node: str
    incarnation: int
    source: str

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


GossipMessage = Union[Ping, IndirectPing, Ack, Nack, Alive, Suspect, Dead]


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipPacket:
    """One UDP datagram: a compound of messages (a probe plus piggybacked broadcasts).
    Encoded as a bare CBOR array of tagged messages to save bytes."""

    messages: list[GossipMessage]


@dataclass(frozen=True, slots=True, kw_only=True)
class PushNodeState:
    """One member's full state in a push-pull exchange."""

    node: str
    addr: str
    incarnation: int
    state: MemberState
    meta: MemberMeta

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPullRequest:
    """Full-state sync, sent over the reliable peer link (not UDP): for a join
    (``join=True``) and periodic anti-entropy. Answered by :class:`PushPullResponse`."""

    KIND: ClassVar[int] = GossipKind.PUSH_PULL_REQUEST
    source: str
    join: bool
    members: list[PushNodeState]


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPullResponse:
    KIND: ClassVar[int] = GossipKind.PUSH_PULL_RESPONSE
    source: str
    members: list[PushNodeState]


PushPullMessage = Union[PushPullRequest, PushPullResponse]

for _cls in (*get_args(GossipMessage), *get_args(PushPullMessage)):
    tagged(_cls)


def gossip_message_size(msg: GossipMessage) -> int:
    """Encoded size in bytes of one message inside a :class:`GossipPacket`."""
    return len(cbor2.dumps(to_plain(msg)))


def _mac(key: bytes, header: int, body: bytes) -> bytes:
    return _hmac.new(key, bytes((header,)) + body, _hashlib.sha256).digest()


def encode_gossip(msg: GossipPacket | PushPullRequest | PushPullResponse,
                  key: bytes | None = None) -> bytes:
    """Frame a UDP packet or a push-pull stream message, authenticated when ``key`` is set."""
    if isinstance(msg, GossipPacket):
        body = cbor2.dumps([to_plain(m) for m in msg.messages])
        header = GOSSIP_PACKET_MAC if key else GOSSIP_PACKET_PLAIN
    else:
        body = cbor2.dumps(to_plain(msg))
        header = GOSSIP_STREAM_MAC if key else GOSSIP_STREAM_PLAIN
    if key:
        return bytes((header,)) + _mac(key, header, body) + body
    return bytes((header,)) + body


def decode_gossip(
    data: bytes, key: bytes | None = None
) -> GossipPacket | PushPullRequest | PushPullResponse:
    """Check and decode a gossip frame.

    Args:
        data: the frame as received.
        key: the cluster key; when set, only frames with a valid MAC are accepted, and
            when unset, authenticated frames are refused (we cannot check them).

    Raises:
        WireError: ``MALFORMED`` for a bad header, MAC or shape (``details["reason"]`` is
            ``"auth"`` for a MAC problem); ``FRAME_TOO_LARGE``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 2:
        raise WireError(Code.MALFORMED, "a gossip frame must be at least 2 bytes")
    data = bytes(data)
    header = data[0]
    plain, mac = (GOSSIP_PACKET_PLAIN, GOSSIP_PACKET_MAC) if header >> 4 == 1 else (
        GOSSIP_STREAM_PLAIN, GOSSIP_STREAM_MAC)
    if header not in (plain, mac):
        raise WireError(Code.MALFORMED, f"unknown gossip frame header 0x{header:02x}")
    if key:
        if header != mac:
            raise WireError(Code.MALFORMED, "frame is not authenticated; this cluster has a key",
                            reason="auth")
        tag, body = data[1:1 + GOSSIP_MAC_BYTES], data[1 + GOSSIP_MAC_BYTES:]
        if not _hmac.compare_digest(tag, _mac(key, header, body)):
            raise WireError(Code.MALFORMED, "frame MAC does not match the cluster key",
                            reason="auth")
    elif header == mac:
        raise WireError(Code.MALFORMED, "frame is authenticated but no cluster key is set",
                        reason="auth")
    else:
        body = data[1:]
    if header >> 4 == 1:  # a UDP packet
        msgs = from_plain(list[GossipMessage], loads_plain(body, UDP_PACKET_BYTES_MAX), "$")
        return GossipPacket(messages=msgs)
    return from_plain(PushPullMessage, loads_plain(body), "$")  # type: ignore[arg-type]


# ======================================================================================
# Replication peer messages (issue 6) — appended below this line
# ======================================================================================


class ReplKind(IntEnum):
    """Tags of the replication peer messages inside :data:`ReplMessage` (300-399)."""

    PREPARE = 301
    PROMISE = 302
    APPEND = 303
    APPEND_ACK = 304
    CATCH_UP = 305
    CATCH_UP_REPLY = 306
    INSTALL_SNAPSHOT = 307
    SNAPSHOT_CHUNK = 308
    REMOVED = 309


@dataclass(frozen=True, slots=True, order=True)
class Epoch:
    """A shard's ballot (DESIGN §4): ordered by counter, then node id. Only ``node`` ever
    leads epoch ``(counter, node)``, so two leaders can never share an epoch."""

    counter: int = 0
    node: str = ""


EPOCH_ZERO = Epoch(0, "")


class EntryKind(IntEnum):
    """What a shard log entry carries."""

    NORMAL = 1  # an opaque payload from the state machine (a batch of LMDB mutations)
    NOOP = 2  # appended by a new leader at its epoch before it serves (DESIGN §4)
    CONFIG = 3  # a new membership, effective as soon as it is appended


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardConfig:
    """A shard's membership: voters form quorums, learners only receive the log."""

    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplEntry:
    """One shard log entry. ``(epoch, index)`` names it uniquely across the group."""

    epoch: Epoch
    index: int
    kind: EntryKind = EntryKind.NORMAL
    payload: Any = None  # opaque to replication; plain CBOR values (bytes in a node)
    config: ShardConfig | None = None  # set iff kind == CONFIG


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare:
    """Candidate -> config members: promise to ignore every epoch below ``epoch``.
    ``pre``: only ask whether you would (the pre-vote); answering changes nothing, so a
    member that can never win (e.g. listed only in a config the others do not have) does
    not raise everyone's epoch and abort the campaigns that could."""

    KIND: ClassVar[ReplKind] = ReplKind.PREPARE
    shard: int
    epoch: Epoch
    pre: bool = False
    # The candidate's last entry: a member whose config does not list the candidate
    # promises only a log at least this advanced as its own (Raft's vote restriction).
    last_epoch: Epoch = EPOCH_ZERO
    last_index: int = 0


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Promise:
    """Answer to :class:`Prepare`. ``ok`` carries the member's last entry and commit index;
    a refusal carries the higher epoch already ``promised``."""

    KIND: ClassVar[ReplKind] = ReplKind.PROMISE
    shard: int
    epoch: Epoch  # the epoch being answered
    ok: bool
    promised: Epoch
    last_epoch: Epoch = EPOCH_ZERO
    last_index: int = 0
    commit: int = 0
    pre: bool = False  # the answer to a pre-vote: ``ok`` means "would promise"


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Append:
    """Leader -> member: entries after ``(prev_epoch, prev_index)``; empty = heartbeat."""

    KIND: ClassVar[ReplKind] = ReplKind.APPEND
    shard: int
    epoch: Epoch
    prev_epoch: Epoch
    prev_index: int
    entries: list[ReplEntry] = field(default_factory=list)
    commit: int = 0
    compact: int = 0  # every voter has applied up to here: the log below may go
    read_seq: int = 0  # quorum-read round this message confirms (echoed in the ack)


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class AppendAck:
    """Member -> leader. ``epoch`` is the member's promise: above the leader's, it is a
    rejection that makes the leader step down. ``ok=False`` at the same epoch is a log
    mismatch at ``reject_index``; ``hint_index`` says where to probe next."""

    KIND: ClassVar[ReplKind] = ReplKind.APPEND_ACK
    shard: int
    epoch: Epoch
    ok: bool
    match: int = 0  # durable prefix known to equal the leader's log
    reject_index: int = 0
    hint_index: int = 0
    applied: int = 0
    read_seq: int = 0


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUp:
    """Candidate -> most advanced promiser: send your entries from ``from_index``."""

    KIND: ClassVar[ReplKind] = ReplKind.CATCH_UP
    shard: int
    epoch: Epoch
    from_index: int


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUpReply:
    """Answer to :class:`CatchUp`: a page of entries and where the sender's log ends.
    ``snapshot`` (with ``ok`` false): the sender compacted past ``from_index``, so it sends
    an :class:`InstallSnapshot` of its applied state instead; ask again once it is in."""

    KIND: ClassVar[ReplKind] = ReplKind.CATCH_UP_REPLY
    shard: int
    epoch: Epoch
    ok: bool
    promised: Epoch
    entries: list[ReplEntry] = field(default_factory=list)
    last_index: int = 0
    snapshot: bool = False


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot:
    """The shard's state as of ``index``: leader -> member too far behind (``epoch`` is
    the leader's), or the most advanced promiser -> a candidate whose catch-up point it
    compacted past (``epoch`` is the candidate's)."""

    KIND: ClassVar[ReplKind] = ReplKind.INSTALL_SNAPSHOT
    shard: int
    epoch: Epoch
    index: int
    snap_epoch: Epoch
    config: ShardConfig
    data: Any = None  # opaque to replication: the shard's tables


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotChunk:
    """Leader -> member, ahead of :class:`InstallSnapshot`: one bounded piece of the shard's
    state as of ``index``. The node's driver streams these (the core never sees them) and
    hands the assembled rows to the core with the ``InstallSnapshot`` that names ``chunks``.
    ``rows`` is a log-entry payload of puts (``store.tables.encode_mutations``)."""

    KIND: ClassVar[ReplKind] = ReplKind.SNAPSHOT_CHUNK
    shard: int
    epoch: Epoch
    index: int
    seq: int  # 0, 1, ... in order
    rows: bytes


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Removed:
    """Member -> a node outside the shard's configuration: the committed config at
    ``config_index`` does not list the receiver. Unless the receiver's own log holds a
    later config that lists it (it was added back), its replica stops taking part and is
    dropped with its data: a removed member never gets the entry that removes it (the
    leader stops sending to it), so without this it would keep a stale copy and campaign
    in vain. ``epoch`` is the sender's promise (informative)."""

    KIND: ClassVar[ReplKind] = ReplKind.REMOVED
    shard: int
    epoch: Epoch
    config_index: int


ReplMessage = Union[Prepare, Promise, Append, AppendAck, CatchUp, CatchUpReply, InstallSnapshot,
                    SnapshotChunk, Removed]


def encode_repl(msg: ReplMessage) -> bytes:
    """CBOR frame of one replication message (tagged, so :func:`decode_repl` can type it)."""
    return cbor2.dumps(to_plain(msg))  # a @tagged class encodes as {k, v} by itself


def decode_repl(data: bytes, limit: int = FRAME_BYTES_MAX) -> ReplMessage:
    """Decode and check one replication message; raises ``WireError`` on anything else."""
    return from_plain(ReplMessage, loads_plain(data, limit))
