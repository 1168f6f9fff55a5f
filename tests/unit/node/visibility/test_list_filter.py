"""The list filter: Temporal's query language over run summaries, and its errors."""

from __future__ import annotations

import datetime

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import wire
from shoal.node.visibility import list_filter

S = wire.WorkflowExecutionStatus


def _t(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).replace(tzinfo=datetime.timezone.utc).timestamp()


def _run(wf: str, *, wtype: str = "Order", status: S = S.RUNNING, tq: str = "main",
         start: str = "2026-11-01T00:00:00", close: str | None = None, length: int = 5,
         **attrs: object) -> wire.WorkflowExecutionInfo:
    return wire.WorkflowExecutionInfo(
        workflow_id=wf, run_id=f"run-{wf}", workflow_type=wtype, task_queue=tq, status=status,
        start_time=_t(start), close_time=None if close is None else _t(close),
        history_length=length,
        search_attributes={k: cbor2.dumps(v) for k, v in attrs.items()},
    )


RUNS = [
    _run("a", Customer="ann", Amount=10, Tags=["red", "blue"], Due="2026-12-01T00:00:00+00:00"),
    _run("b", wtype="Refund", status=S.COMPLETED, close="2026-11-02T00:00:00", Customer="bob",
         Amount=25.5, Vip=True),
    _run("c", status=S.FAILED, tq="other", start="2026-11-03T00:00:00",
         close="2026-11-04T00:00:00", Customer="ann", length=40),
    _run("d", status=S.CONTINUED_AS_NEW, start="2026-10-01T00:00:00", close="2026-10-02T00:00:00"),
]


def _ids(query: str) -> list[str]:
    f = list_filter.parse(query)
    found = [r for r in RUNS if f.matches(r)]
    f.sort(found)
    return [r.workflow_id for r in found]


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["c", "a", "b", "d"]),
    ("WorkflowType = 'Order'", ["c", "a", "d"]),
    ("workflowtype='Refund'", ["b"]),
    ("WorkflowType = 'Order' AND ExecutionStatus = 'Running'", ["a"]),
    ("ExecutionStatus = 'ContinuedAsNew'", ["d"]),
    ("ExecutionStatus = 2", ["b"]),
    ("ExecutionStatus != 'Running'", ["c", "b", "d"]),
    ("ExecutionStatus IN ('Failed', 'Completed')", ["c", "b"]),
    ("ExecutionStatus NOT IN ('Failed', 'Completed')", ["a", "d"]),
    ("TaskQueue = \"other\"", ["c"]),
    ("WorkflowId = 'a' OR WorkflowId = 'b' AND ExecutionStatus = 'Running'", ["a"]),
    ("(WorkflowId = 'a' OR WorkflowId = 'b') AND Customer = 'bob'", ["b"]),
    ("NOT WorkflowType = 'Order'", ["b"]),
    ("StartTime > '2026-11-01T12:00:00Z'", ["c"]),
    ("StartTime >= '2026-11-01'", ["c", "a", "b"]),
    ("StartTime BETWEEN '2026-09-30T00:00:00Z' AND '2026-11-01T00:00:00Z'", ["a", "b", "d"]),
    ("CloseTime < '2026-11-03T00:00:00+00:00'", ["b", "d"]),
    ("CloseTime IS NULL", ["a"]),
    ("CloseTime IS NOT NULL", ["c", "b", "d"]),
    ("HistoryLength > 10", ["c"]),
    ("Customer = 'ann'", ["c", "a"]),
    ("`Customer` = 'ann' AND WorkflowId STARTS_WITH 'c'", ["c"]),
    ("Amount >= 20", ["b"]),
    ("Amount < 20", ["a"]),
    ("Amount = 'ten'", []),  # different kinds never match
    ("Vip = true", ["b"]),
    ("Tags = 'blue'", ["a"]),
    ("Tags IN ('green', 'red')", ["a"]),
    ("Due > '2026-11-15T00:00:00Z'", ["a"]),
    ("Missing = 'x'", []),
    ("Missing IS NULL", ["c", "a", "b", "d"]),
    ("Customer NOT IN ('bob')", ["c", "a"]),  # a run without Customer is NULL: no match
    ("ORDER BY StartTime ASC", ["d", "a", "b", "c"]),
    ("WorkflowType = 'Order' ORDER BY HistoryLength DESC", ["c", "a", "d"]),
    ("ORDER BY CloseTime", ["c", "b", "d", "a"]),  # open runs last
    ("WorkflowId = 'it''s'", []),
])
def test_queries_select_and_order_runs(query: str, expected: list[str]) -> None:
    assert _ids(query) == expected


@pytest.mark.parametrize(("query", "fragment"), [
    ("WorkflowType =", "expected a value"),
    ("WorkflowType 'Order'", "expected an operator"),
    ("= 'Order'", "expected an attribute name"),
    ("WorkflowType = 'Order' AND", "expected an attribute name"),
    ("(WorkflowType = 'Order'", "expected ')'"),
    ("WorkflowType = 'Order')", "unexpected ')'"),
    ("WorkflowType = 'Order' WorkflowId = 'a'", "expected AND, OR or the end"),
    ("ExecutionStatus = 'Sleeping'", "ExecutionStatus is one of"),
    ("StartTime > 'yesterday'", "ISO-8601"),
    ("StartTime > 5", "ISO-8601"),
    ("WorkflowId = 5", "takes a string"),
    ("HistoryLength > 'long'", "takes a number"),
    ("WorkflowType = 'Order' ; DROP", "unexpected character ';'"),
    ("WorkflowType = 'unterminated", "unexpected character"),
    ("ORDER BY Customer", "ORDER BY takes one of"),
    ("GROUP BY WorkflowType", "GROUP BY takes ExecutionStatus only"),
    ("WorkflowId BETWEEN 'a' 'b'", "expected AND"),
    ("x" * (list_filter.MAX_QUERY_LENGTH + 1), "the limit is"),
])
def test_bad_queries_get_a_named_error_that_says_where(query: str, fragment: str) -> None:
    with pytest.raises(wire.ShoalError) as err:
        list_filter.parse(query)
    assert err.value.code == wire.Code.INVALID_ARGUMENT
    assert fragment in err.value.message
    assert err.value.message.startswith("invalid list query")


def test_group_by_status_is_parsed_for_counting() -> None:
    f = list_filter.parse("WorkflowType = 'Order' GROUP BY ExecutionStatus")
    assert f.group_by_status and [r.workflow_id for r in RUNS if f.matches(r)] == ["a", "c", "d"]


def test_an_attribute_value_that_is_not_cbor_is_null() -> None:
    run = wire.WorkflowExecutionInfo(
        workflow_id="x", run_id="r", workflow_type="T", task_queue="q", status=S.RUNNING,
        start_time=0.0, search_attributes={"Broken": b"\xff\xff"})
    assert list_filter.parse("Broken IS NULL").matches(run)
    assert not list_filter.parse("Broken = 'x'").matches(run)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_a_named_error(query: str) -> None:
    try:
        f = list_filter.parse(query)
    except wire.ShoalError as exc:
        assert exc.code == wire.Code.INVALID_ARGUMENT
        return
    for run in RUNS:  # evaluating a parsed filter never raises
        f.matches(run)


def test_parent_and_root_ids_filter_and_a_parentless_run_has_null_parent() -> None:
    x = wire.WorkflowExecution
    top = wire.WorkflowExecutionInfo(
        workflow_id="top", run_id="t1", workflow_type="T", task_queue="q", status=S.RUNNING,
        start_time=1.0, root_execution=x(workflow_id="top", run_id="t1"), history_size_bytes=90)
    child = wire.WorkflowExecutionInfo(
        workflow_id="kid", run_id="k1", workflow_type="T", task_queue="q", status=S.RUNNING,
        start_time=2.0, parent_execution=x(workflow_id="top", run_id="t1"),
        root_execution=x(workflow_id="top", run_id="t1"), history_size_bytes=400)

    def ids(query: str) -> list[str]:
        f = list_filter.parse(query)
        return [r.workflow_id for r in (top, child) if f.matches(r)]

    assert ids("RootWorkflowId = 'top'") == ["top", "kid"]
    assert ids("RootRunId = 't1' AND ParentWorkflowId = 'top'") == ["kid"]
    assert ids("ParentRunId = 't1'") == ["kid"]
    assert ids("ParentWorkflowId IS NULL") == ["top"]
    assert ids("ParentWorkflowId != 'top'") == []  # NULL matches no comparison
    assert ids("HistorySizeBytes > 100") == ["kid"]
