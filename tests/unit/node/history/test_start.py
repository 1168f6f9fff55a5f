"""Starting runs: request checks, id reuse policies, idempotent retries, the shell glue."""

import pytest
from helpers.history_driver import NS, Run, complete, start_request

from shoal import wire
from shoal.node.history.engine import HistoryEngine, Transition
from shoal.node.history.invariants import check_history
from shoal.node.history import records
from shoal.node.history.records import TimerKind

Status = wire.WorkflowExecutionStatus
Policy = wire.IdReusePolicy


def _current(run: Run) -> records.CurrentRun:
    return records.CurrentRun(run_id=run.state.run_id, status=Status.RUNNING, start_request_id="req-1")


def _closed(engine: HistoryEngine, how: str) -> Run:
    run = Run(engine)
    if how == "completed":
        run.run_wt([complete()])
    elif how == "failed":
        run.run_wt([wire.FailWorkflowExecutionCommand(failure=wire.Failure(message="x"))])
    else:
        run.apply(engine.terminate(run.state, reason="x", identity="t", now=run.now))
    return run


def _start(engine: HistoryEngine, run: Run | None, policy: Policy, request_id: str = "req-2"):
    return engine.start_workflow(
        start_request(request_id=request_id, id_reuse_policy=policy), namespace=NS, run_id="run-2",
        current=_current(run) if run else None, previous=run.state if run else None, now=500.0,
    )


def test_start_writes_started_and_scheduled_events_with_timeouts(engine: HistoryEngine) -> None:
    run = Run(engine, input=[b"World"], workflow_task_timeout_s=500.0, workflow_run_timeout_s=60.0)
    started = run.history[0].attributes
    assert (started.input, started.first_execution_run_id, started.request_id) == ([b"World"], "run-1", "req-1")
    assert started.workflow_task_timeout_s == 60.0  # capped by 120 s, then by the run timeout
    assert run.timer(TimerKind.WORKFLOW_RUN_TIMEOUT).fire_time == 160.0
    assert [t.kind for t in run.timers] == [TimerKind.WORKFLOW_RUN_TIMEOUT]


def test_same_request_id_returns_the_existing_run_and_writes_nothing(engine: HistoryEngine) -> None:
    run = Run(engine)
    res = _start(engine, run, Policy.ALLOW_DUPLICATE, request_id="req-1")
    assert res.state is None and res.transition is None
    assert res.response == wire.StartWorkflowResponse(run_id="run-1", started=False)


def test_running_workflow_rejects_a_second_start_with_its_run_id(engine: HistoryEngine) -> None:
    run = Run(engine)
    for policy in (Policy.ALLOW_DUPLICATE, Policy.ALLOW_DUPLICATE_FAILED_ONLY, Policy.REJECT_DUPLICATE):
        with pytest.raises(wire.ShoalError) as err:
            _start(engine, run, policy)
        assert err.value.code == wire.Code.WORKFLOW_ALREADY_STARTED
        assert err.value.details == {"run_id": "run-1"}


@pytest.mark.parametrize("how,policy,allowed", [
    ("completed", Policy.ALLOW_DUPLICATE, True),
    ("completed", Policy.ALLOW_DUPLICATE_FAILED_ONLY, False),
    ("failed", Policy.ALLOW_DUPLICATE_FAILED_ONLY, True),
    ("terminated", Policy.ALLOW_DUPLICATE_FAILED_ONLY, True),
    ("completed", Policy.REJECT_DUPLICATE, False),
    ("failed", Policy.REJECT_DUPLICATE, False),
    ("completed", Policy.TERMINATE_IF_RUNNING, True),
])
def test_id_reuse_policy_after_a_closed_run(engine: HistoryEngine, how: str, policy: Policy, allowed: bool) -> None:
    prev = _closed(engine, how)
    if allowed:
        res = _start(engine, prev, policy)
        assert res.state is not None and res.state.run_id == "run-2" and res.previous is None
        assert check_history(res.transition.events) == []
    else:
        with pytest.raises(wire.ShoalError) as err:
            _start(engine, prev, policy)
        assert err.value.code == wire.Code.WORKFLOW_ALREADY_STARTED


def test_stale_current_status_is_overridden_by_the_runs_state(engine: HistoryEngine) -> None:
    prev = _closed(engine, "completed")  # CurrentRun still says RUNNING (written at start)
    assert _start(engine, prev, Policy.ALLOW_DUPLICATE).state is not None


def test_terminate_if_running_terminates_the_current_run_first(engine: HistoryEngine) -> None:
    prev = Run(engine)
    prev.poll_wt()
    res = _start(engine, prev, Policy.TERMINATE_IF_RUNNING)
    prev.apply(res.previous)
    assert prev.types()[-1] == "WORKFLOW_EXECUTION_TERMINATED"
    assert prev.state.status == Status.TERMINATED and res.state.status == Status.RUNNING


@pytest.mark.parametrize("kw,code", [
    ({"workflow_id": ""}, wire.Code.INVALID_ARGUMENT),
    ({"task_queue": "q" * (wire.ID_CHARS_MAX + 1)}, wire.Code.INVALID_ARGUMENT),
    ({"workflow_run_timeout_s": -1.0}, wire.Code.INVALID_ARGUMENT),
    ({"input": [b"x" * (wire.PAYLOAD_BYTES_MAX + 1)]}, wire.Code.PAYLOAD_TOO_LARGE),
])
def test_bad_start_requests_are_refused(engine: HistoryEngine, kw: dict, code: wire.Code) -> None:
    with pytest.raises(wire.ShoalError) as err:
        engine.start_workflow(start_request(**kw), namespace=NS, run_id="r", current=None, now=1.0)
    assert err.value.code == code


class _FakeBatch:
    """The shell's batch, reduced to what start_in_batch uses."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.cur: records.CurrentRun | None = None
        self.states: dict[str, records.ExecutionState] = {}
        self.recorded: list[tuple[str, Transition]] = []

    def current(self):
        return self.cur

    def load(self, run_id: str):
        if run_id not in self.states:
            raise wire.ShoalError(wire.Code.NOT_FOUND, "gone")
        return self.states[run_id]

    def record(self, state, tr) -> None:
        self.recorded.append((state.run_id, tr))

    def set_current(self, current) -> None:
        self.cur = current

    def add_run(self, state) -> None:
        self.states[state.run_id] = state


def test_start_in_batch_stages_run_current_and_dedupes_retries(engine: HistoryEngine) -> None:
    b = _FakeBatch(10.0)
    resp = engine.start_in_batch(b, start_request(), namespace=NS, run_id="run-1")
    assert resp == wire.StartWorkflowResponse(run_id="run-1")
    assert b.cur == records.CurrentRun(run_id="run-1", status=Status.RUNNING, start_request_id="req-1")
    assert [rid for rid, _ in b.recorded] == ["run-1"]
    again = engine.start_in_batch(b, start_request(), namespace=NS, run_id="run-x")
    assert again == wire.StartWorkflowResponse(run_id="run-1", started=False)
    assert len(b.recorded) == 1
    replaced = engine.start_in_batch(
        b, start_request(request_id="req-2", id_reuse_policy=Policy.TERMINATE_IF_RUNNING),
        namespace=NS, run_id="run-2")
    assert replaced.run_id == "run-2"
    assert [rid for rid, _ in b.recorded] == ["run-1", "run-1", "run-2"]
    assert b.states["run-1"].status == Status.TERMINATED
