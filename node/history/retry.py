"""Retry maths for activities: the default policy, validation, and the backoff decision.

Owns: pure functions mirroring Temporal's ``service/history/workflow/retry.go``
(``getBackoffInterval``, ``isRetryable``). Must not: touch mutable state or produce events.
"""

from __future__ import annotations

import dataclasses

from shoal import wire

# Temporal's default activity retry policy: 1 s initial, coefficient 2, maximum interval
# 100 x initial, unlimited attempts.
DEFAULT_MAX_INTERVAL_FACTOR = 100.0


def effective_policy(policy: wire.RetryPolicy | None) -> wire.RetryPolicy:
    """The policy a scheduled activity runs under: the default when none, gaps filled in."""
    if policy is None:
        policy = wire.RetryPolicy()
    if policy.maximum_interval_s is None:
        policy = dataclasses.replace(
            policy, maximum_interval_s=policy.initial_interval_s * DEFAULT_MAX_INTERVAL_FACTOR
        )
    return policy


def policy_problem(policy: wire.RetryPolicy | None) -> str | None:
    """Why ``policy`` is invalid (a message a person can act on), or None if it is fine."""
    if policy is None:
        return None
    if not policy.initial_interval_s > 0:
        return f"retry_policy.initial_interval_s is {policy.initial_interval_s}; it must be > 0"
    if not policy.backoff_coefficient >= 1:
        return f"retry_policy.backoff_coefficient is {policy.backoff_coefficient}; it must be >= 1"
    if policy.maximum_interval_s is not None and policy.maximum_interval_s < policy.initial_interval_s:
        return (
            f"retry_policy.maximum_interval_s ({policy.maximum_interval_s}) is below "
            f"initial_interval_s ({policy.initial_interval_s})"
        )
    if policy.maximum_attempts < 0:
        return f"retry_policy.maximum_attempts is {policy.maximum_attempts}; it must be >= 0"
    return None


def is_retryable(failure: wire.Failure | None, policy: wire.RetryPolicy) -> bool:
    """Whether ``failure`` may be retried at all, before attempts and deadlines count.

    A timeout is retryable only for start-to-close and heartbeat (schedule-to-start and
    schedule-to-close are deadlines of the whole activity). An application failure is not
    when it says so or when its type is listed in ``non_retryable_error_types``.
    """
    if failure is None:
        return True
    if failure.kind == wire.FailureKind.TIMEOUT:
        return failure.timeout_type in (wire.TimeoutType.START_TO_CLOSE, wire.TimeoutType.HEARTBEAT)
    if failure.non_retryable:
        return False
    return not (failure.type and failure.type in policy.non_retryable_error_types)


def backoff_interval(
    policy: wire.RetryPolicy,
    *,
    attempt: int,
    failure: wire.Failure | None,
    now: float,
    expiration_time: float | None,
) -> tuple[float | None, wire.RetryState]:
    """How long to wait before attempt ``attempt + 1``, or None and why retries stop.

    Args:
        policy: the effective policy (``effective_policy``).
        attempt: the attempt that just failed, from 1.
        failure: what the attempt failed with (a TIMEOUT failure for timeouts).
        now: the current time, epoch seconds.
        expiration_time: the schedule-to-close deadline, if any: a retry that would start
            after it is not made (retry state TIMEOUT).
    Returns:
        ``(seconds, IN_PROGRESS)`` to retry, else ``(None, reason)``.
    """
    if not is_retryable(failure, policy):
        return None, wire.RetryState.NON_RETRYABLE_FAILURE
    if policy.maximum_attempts > 0 and attempt >= policy.maximum_attempts:
        return None, wire.RetryState.MAXIMUM_ATTEMPTS_REACHED
    maximum = policy.maximum_interval_s
    if maximum is None:
        maximum = policy.initial_interval_s * DEFAULT_MAX_INTERVAL_FACTOR
    try:
        interval = min(policy.initial_interval_s * policy.backoff_coefficient ** (attempt - 1), maximum)
    except OverflowError:  # a long-retried activity: coefficient ** attempt leaves float range
        interval = maximum
    if expiration_time is not None and now + interval > expiration_time:
        return None, wire.RetryState.TIMEOUT
    return interval, wire.RetryState.IN_PROGRESS
