"""Limits and defaults of the history engine.

Owns: ``HistoryConfig``, the one frozen config of ``node/history``. Must not: hold state.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal import wire


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryConfig:
    """Limits and defaults applied by the history engine."""

    history_events_max: int = wire.HISTORY_EVENTS_MAX
    """A run whose history grows past this many events is terminated (as Temporal does).
    Default 50 000; higher lets runaway workflows grow without bound before they stop."""

    pending_activities_max: int = wire.PENDING_ACTIVITIES_MAX
    """Activities a run may have pending at once; more fails the workflow task with
    PENDING_ACTIVITIES_LIMIT_EXCEEDED. Default 2 000."""

    payload_bytes_max: int = wire.PAYLOAD_BYTES_MAX
    """Largest payload group (input, result, failure) accepted, in bytes. Default 2 MiB."""

    workflow_task_timeout_s: float = 10.0
    """Start-to-close timeout of a workflow task when the start request names none. Default
    10 s, as Temporal; shorter reacts faster to a lost worker but fails slow replays."""

    workflow_task_timeout_max_s: float = 120.0
    """Cap on a requested workflow task timeout, in seconds (Temporal's cap). Default 120 s."""

    workflow_task_backoff_min_attempts: int = 3
    """Workflow task attempts up to this number are dispatched at once; later attempts of a
    task that keeps failing wait a backoff first (a WORKFLOW_TASK_RETRY timer), so a worker
    that fails every replay does not spin. Default 3."""

    workflow_task_backoff_initial_s: float = 1.0
    """Backoff before the first delayed workflow task attempt, doubling after. Default 1 s."""

    workflow_task_backoff_max_s: float = 60.0
    """Longest backoff between workflow task attempts, in seconds. Default 60 s."""
