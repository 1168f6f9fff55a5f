"""``shoal workflow ...`` in-process against a fake node: what is sent, what is printed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from helpers.cli_fake import failure, fake_node, info, payload
from shoal import wire
from shoal.cli.main import app
from shoal.sdk.connection import RPCError

S = wire.WorkflowExecutionStatus
runner = CliRunner()
STARTED = wire.StartWorkflowResponse(run_id="run-1")


def invoke(*args: str):
    return runner.invoke(app, ["workflow", *args], env={"COLUMNS": "200"})


def test_start_sends_the_options_through_the_client(monkeypatch) -> None:
    made = fake_node(monkeypatch, {wire.Op.START_WORKFLOW: STARTED})
    res = invoke("start", "--type", "Order", "-t", "q", "-w", "o1", "-i", '"ann"', "-i", "2",
                 "--memo", 'owner={"n": 1}', "--search-attribute", 'Team="blue"',
                 "--execution-timeout", "1h", "--run-timeout", "500ms", "--task-timeout", "5",
                 "--id-reuse-policy", "RejectDuplicate", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"workflow_id": "o1", "run_id": "run-1"}
    [(op, req)] = made[0].sent
    assert op == wire.Op.START_WORKFLOW
    assert (req.workflow_id, req.workflow_type, req.task_queue) == ("o1", "Order", "q")
    assert req.input == [payload("ann"), payload(2)]
    assert req.memo == {"owner": payload({"n": 1})}
    assert req.search_attributes == {"Team": payload("blue")}
    assert (req.workflow_execution_timeout_s, req.workflow_run_timeout_s,
            req.workflow_task_timeout_s) == (3600.0, 0.5, 5.0)
    assert req.id_reuse_policy == wire.IdReusePolicy.REJECT_DUPLICATE
    assert req.identity == "shoal-cli" and made[0].closed


def test_start_refused_as_already_started_prints_the_nodes_reason_on_one_line(monkeypatch) -> None:
    refused = RPCError(wire.Code.WORKFLOW_ALREADY_STARTED,
                       "workflow 'o[/1]' is already running (run r9)", {"run_id": "r9"})
    fake_node(monkeypatch, {wire.Op.START_WORKFLOW: refused})
    res = invoke("start", "--type", "Order", "-t", "q", "-w", "o[/1]")
    assert res.exit_code == 1
    assert res.output == ("error: workflow 'o[/1]' is already running (run r9) "
                          "[WORKFLOW_ALREADY_STARTED]\n")


@pytest.mark.parametrize("args, message", [
    (["--search-attribute", 'Team={"a": 1}'], "--search-attribute"),
    (["--run-timeout", "0.0000001s"], "must be more than zero"),
    (["--id-reuse-policy", "Sometimes"], "AllowDuplicate"),
])
def test_start_refuses_bad_options_before_connecting(monkeypatch, args, message) -> None:
    made = fake_node(monkeypatch, {})
    res = invoke("start", "--type", "Order", "-t", "q", *args)
    assert res.exit_code == 2 and message in res.output
    assert made == []


def test_execute_waits_out_a_running_poll_and_exits_1_on_failure(monkeypatch) -> None:
    made = fake_node(monkeypatch, {
        wire.Op.START_WORKFLOW: STARTED,
        wire.Op.GET_RESULT: [wire.GetResultResponse(run_id="run-1", status=S.RUNNING),
                             wire.GetResultResponse(run_id="run-2", status=S.FAILED,
                                                    failure=failure("[/bad] input"))]})
    res = invoke("execute", "--type", "Order", "-t", "q", "-w", "o1")
    assert res.exit_code == 1
    assert res.output == ("Started workflow o1 run run-1\nFailed  run run-2\n"
                          "[/bad] input (BadInput)\n")
    polls = [req for op, req in made[0].sent if op == wire.Op.GET_RESULT]
    assert len(polls) == 2 and all(p.follow_runs for p in polls)
    assert polls[0].execution == wire.WorkflowExecution(workflow_id="o1", run_id="run-1")


def test_result_of_a_completed_run_prints_the_value_and_exits_0(monkeypatch) -> None:
    made = fake_node(monkeypatch, {wire.Op.GET_RESULT: wire.GetResultResponse(
        run_id="r1", status=S.COMPLETED, result=[payload({"x": 1})])})
    res = invoke("result", "-w", "o1", "--json")
    assert res.exit_code == 0
    assert json.loads(res.output) == {"workflow_id": "o1", "run_id": "r1",
                                      "status": "Completed", "result": {"x": 1}}
    assert made[0].sent[0][1].execution.run_id == ""  # the current run


def test_describe_list_and_history_show_ids_with_brackets(monkeypatch) -> None:
    wid = "order[/1]"
    event = wire.HistoryEvent(
        event_id=1, event_time=info().start_time,
        event_type=wire.EventType.WORKFLOW_EXECUTION_SIGNALED,
        attributes=wire.WorkflowExecutionSignaledAttributes(signal_name="s",
                                                            input=[payload("[/x]")]))
    fake_node(monkeypatch, {
        wire.Op.DESCRIBE_WORKFLOW: wire.DescribeWorkflowResponse(info=info(wid)),
        wire.Op.LIST_WORKFLOWS: wire.ListWorkflowsResponse(executions=[info(wid)]),
        wire.Op.GET_HISTORY: wire.GetHistoryResponse(events=[event])})
    for args in (["describe", "-w", wid], ["list"], ["history", "-w", wid]):
        res = invoke(*args)
        assert res.exit_code == 0, (args, res.output)
        assert wid in res.output
    described = invoke("describe", "-w", wid, "--json")
    assert json.loads(described.output)["info"]["workflow_id"] == wid


def test_count_prints_groups(monkeypatch) -> None:
    fake_node(monkeypatch, {wire.Op.COUNT_WORKFLOWS: wire.CountWorkflowsResponse(
        count=3, groups=[wire.CountWorkflowsGroup(status=S.RUNNING, count=3)])})
    res = invoke("count", "-q", "GROUP BY ExecutionStatus", "--json")
    assert json.loads(res.output) == {"count": 3, "groups": [{"status": "Running", "count": 3}]}


def test_a_node_error_quoting_brackets_is_one_line(monkeypatch) -> None:
    fake_node(monkeypatch, {wire.Op.SIGNAL_WORKFLOW: RPCError(
        wire.Code.NOT_FOUND, "workflow 'w[/x]' does not exist")})
    res = invoke("signal", "-w", "w[/x]", "--name", "go")
    assert res.exit_code == 1
    assert res.output == "error: workflow 'w[/x]' does not exist [NOT_FOUND]\n"
