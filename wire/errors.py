"""Error codes, ``ShoalError``/``WireError`` and the protocol's size limits (DESIGN §7).

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from enum import StrEnum

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
    WORKFLOW_NOT_READY = "WORKFLOW_NOT_READY"  # a query its workflow cannot answer yet


class ShoalError(Exception):
    """An operating error with a named code and a message a person can act on."""

    def __init__(self, code: Code, message: str, **details: object) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.details = code, message, details


class WireError(ShoalError):
    """Bytes or values that do not decode into a valid message."""
