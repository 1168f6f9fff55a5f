"""Exceptions <-> wire.Failure: types, fields, details and cause chains survive."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shoal import exceptions as public_exceptions
from shoal import wire
from shoal.sdk import converter
from shoal.sdk.exceptions import (ActivityError, ApplicationError, CancelledError,
                                  ChildWorkflowError, FailureError, RetryState, ServerError,
                                  TemporalError, TerminatedError, TimeoutError, TimeoutType,
                                  error_to_failure, failure_to_error, is_cancelled_exception)

CONV = converter.default()


def roundtrip(exc: BaseException) -> FailureError:
    failure = error_to_failure(exc, CONV)
    # Through the wire codec too: what a worker sends is what the client reads.
    return failure_to_error(wire.loads(wire.Failure, wire.dumps(failure)), CONV)


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_application_error_round_trips_every_field():
    err = roundtrip(raised(ApplicationError("bad", {"a": 1}, [2], type="Bad", non_retryable=True)))
    assert isinstance(err, ApplicationError)
    assert (err.message, err.type, err.non_retryable) == ("bad", "Bad", True)
    assert list(err.details) == [{"a": 1}, [2]]
    assert "raise exc" in err.failure.stack_trace


def test_untyped_application_error_keeps_no_type():
    err = roundtrip(ApplicationError("plain"))
    assert err.type is None and err.details == ()


def test_plain_python_exception_becomes_application_error_named_by_class():
    err = roundtrip(raised(ValueError("nope")))
    assert isinstance(err, ApplicationError)
    assert (err.message, err.type, err.non_retryable) == ("nope", "ValueError", False)


def test_cause_chain_survives_in_order():
    try:
        try:
            try:
                raise KeyError("inner")
            except KeyError as e:
                raise TimeoutError("mid", type=TimeoutType.HEARTBEAT,
                                   last_heartbeat_details=["hb"]) from e
        except TimeoutError as e:
            raise ApplicationError("outer", type="Outer") from e
    except ApplicationError as e:
        outer = roundtrip(e)
    mid = outer.cause
    assert isinstance(mid, TimeoutError) and mid.type == TimeoutType.HEARTBEAT
    assert list(mid.last_heartbeat_details) == ["hb"]
    inner = mid.cause
    assert isinstance(inner, ApplicationError) and inner.type == "KeyError"
    assert inner.cause is None


def test_activity_error_round_trips_with_its_cause():
    err = ActivityError("Activity task failed", scheduled_event_id=5, started_event_id=6,
                        identity="w1", activity_type="greet", activity_id="1",
                        retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED)
    err.__cause__ = ApplicationError("boom", type="Boom")
    back = roundtrip(err)
    assert isinstance(back, ActivityError)
    assert (back.scheduled_event_id, back.started_event_id, back.identity) == (5, 6, "w1")
    assert (back.activity_type, back.activity_id) == ("greet", "1")
    assert back.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert isinstance(back.cause, ApplicationError) and back.cause.type == "Boom"


@pytest.mark.parametrize("exc,check", [
    (CancelledError("stop", "why"), lambda e: isinstance(e, CancelledError) and e.details == ("why",)),
    (TerminatedError("end", 1), lambda e: isinstance(e, TerminatedError) and e.details == (1,)),
    (ServerError("srv", non_retryable=True), lambda e: isinstance(e, ServerError) and e.non_retryable),
    (ChildWorkflowError("child", retry_state=RetryState.TIMEOUT),
     lambda e: isinstance(e, ChildWorkflowError) and e.retry_state == RetryState.TIMEOUT),
    (TimeoutError("t", type=None), lambda e: isinstance(e, TimeoutError) and e.type is None),
])
def test_each_failure_kind_round_trips_to_its_class(exc, check):
    back = roundtrip(exc)
    assert check(back) and back.message == exc.message


def test_decoded_error_keeps_the_wire_failure_and_its_remote_stack():
    failure = wire.Failure(message="m", type="T", stack_trace="remote trace")
    err = failure_to_error(failure, CONV)
    assert err.failure is failure
    # Re-raising a remote failure elsewhere keeps its original stack trace.
    assert error_to_failure(err, CONV).stack_trace == "remote trace"


def test_very_deep_cause_chain_is_cut_so_it_still_encodes():
    exc: BaseException = ApplicationError("0")
    for i in range(1, 100):
        nxt = ApplicationError(str(i))
        nxt.__cause__ = exc
        exc = nxt
    failure = error_to_failure(exc, CONV)
    wire.loads(wire.Failure, wire.dumps(failure))  # within the decoder's depth limit
    depth = 0
    while failure.cause is not None:
        failure, depth = failure.cause, depth + 1
    assert 0 < depth < 30


def test_enums_match_temporal_numbers_and_names():
    assert [t.value for t in TimeoutType] == [1, 2, 3, 4]
    assert RetryState.MAXIMUM_ATTEMPTS_REACHED == 4 and RetryState.CANCEL_REQUESTED == 7


def test_is_cancelled_exception_sees_through_activity_errors():
    act = ActivityError("x", scheduled_event_id=0, started_event_id=0, identity="",
                        activity_type="", activity_id="", retry_state=None)
    act.__cause__ = CancelledError()
    assert is_cancelled_exception(act)
    assert not is_cancelled_exception(ApplicationError("x"))


def test_public_module_exports_temporalio_names():
    assert public_exceptions.TemporalError is TemporalError
    assert public_exceptions.ShoalSdkError is TemporalError
    assert issubclass(public_exceptions.ApplicationError, public_exceptions.FailureError)
    assert ApplicationError("x", next_retry_delay=timedelta(seconds=2)).next_retry_delay == \
        timedelta(seconds=2)
