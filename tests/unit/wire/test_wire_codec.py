"""wire/ (codec, frames, limits): round trips, type checks, limits, and hypothesis fuzzing of the decoders."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import wire

# Plain CBOR-able values, nested, as a hostile client could send them.
plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


def _sample_event() -> wire.HistoryEvent:
    return wire.HistoryEvent(
        event_id=3, event_time=1700000000.5, event_type=wire.EventType.ACTIVITY_TASK_FAILED,
        attributes=wire.ActivityTaskFailedAttributes(
            failure=wire.Failure(message="outer", kind=wire.FailureKind.ACTIVITY,
                                 cause=wire.Failure(message="inner", type="ValueError",
                                                    details=[b"\x01"])),
            scheduled_event_id=1, started_event_id=2,
        ),
    )


def test_event_with_failure_chain_round_trips() -> None:
    ev = _sample_event()
    assert wire.loads(wire.HistoryEvent, wire.dumps(ev)) == ev


def test_commands_round_trip_inside_a_request() -> None:
    req = wire.CompleteWorkflowTaskRequest(task_token=b"t", commands=[
        wire.ScheduleActivityTaskCommand(activity_id="1", activity_type="a", task_queue="q",
                                         input=[b"x"], start_to_close_timeout_s=5.0),
        wire.StartTimerCommand(timer_id="2", start_to_fire_timeout_s=1.0),
        wire.CompleteWorkflowExecutionCommand(result=[b"r"]),
    ])
    assert wire.decode_body(wire.Op.COMPLETE_WORKFLOW_TASK, wire.to_plain(req)) == req


def test_wrong_field_type_is_malformed_with_path() -> None:
    body = wire.to_plain(wire.StartWorkflowRequest(workflow_id="w", workflow_type="T",
                                                   task_queue="q", request_id="r"))
    body["input"] = "not-a-list"
    with pytest.raises(wire.WireError) as e:
        wire.decode_body(wire.Op.START_WORKFLOW, body)
    assert e.value.code == wire.Code.MALFORMED and "input" in e.value.message


def test_missing_required_field_is_malformed() -> None:
    with pytest.raises(wire.WireError) as e:
        wire.decode_body(wire.Op.START_WORKFLOW, {"workflow_id": "w"})
    assert "missing field" in e.value.message


def test_event_type_must_match_attributes() -> None:
    plain_ev = wire.to_plain(_sample_event())
    plain_ev["event_type"] = int(wire.EventType.TIMER_FIRED)
    with pytest.raises(wire.WireError):
        wire.from_plain(wire.HistoryEvent, plain_ev)


def test_oversize_frame_is_refused_before_decoding() -> None:
    with pytest.raises(wire.WireError) as e:
        wire.loads_plain(b"\x00" * 100, limit=10)
    assert e.value.code == wire.Code.FRAME_TOO_LARGE


def test_bool_is_not_accepted_as_int() -> None:
    with pytest.raises(wire.WireError):
        wire.from_plain(int, True)


def test_deep_nesting_is_refused() -> None:
    v: object = "x"
    for _ in range(200):
        v = {"message": "m", "cause": v}
    with pytest.raises(wire.WireError):
        wire.from_plain(wire.Failure, v)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        wire.decode_request(data)
    except wire.WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(wire.Op)), plain)
def test_random_bodies_decode_or_raise_wire_error(op: wire.Op, body: object) -> None:
    try:
        wire.decode_body(op, body)
    except wire.WireError:
        pass


@settings(max_examples=200, deadline=None)
@given(plain)
def test_random_history_events_decode_or_raise_wire_error(value: object) -> None:
    try:
        wire.loads(wire.HistoryEvent, cbor2.dumps(value))
    except wire.WireError:
        pass
