"""``shoal workflow ...`` as a person runs it: a real CLI process against a real node, with a
real worker in this process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass

import pytest
import trio

from shoal import workflow
from shoal.client import Client, WorkflowHistory
from shoal.common import EventType
from shoal.exceptions import ApplicationError
from shoal.worker import Worker

pytestmark = pytest.mark.timeout(90)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


async def shoal(node, *args: str, address: str | None = None) -> CliResult:
    """Run ``shoal workflow ARGS`` the way a shell would, with SHOAL_ADDRESS set."""
    env = {**os.environ, "SHOAL_ADDRESS": address or node.address, "COLUMNS": "200"}
    proc = await trio.run_process(
        [sys.executable, "-m", "shoal.cli.main", "workflow", *args],
        capture_stdout=True, capture_stderr=True, check=False, env=env,
    )
    return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@workflow.defn
class Greeter:
    def __init__(self) -> None:
        self.greetings: list[str] = []
        self.prefix = "Hello"
        self.done = False

    @workflow.run
    async def run(self, name: str) -> dict:
        try:
            await workflow.wait_condition(lambda: self.done)
        except asyncio.CancelledError:
            return {"cancelled": True, "greetings": self.greetings}
        return {"name": name, "greetings": self.greetings}

    @workflow.signal
    def greet(self, who: str, times: int) -> None:
        self.greetings.extend([f"{self.prefix}, {who}"] * times)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def count(self) -> int:
        return len(self.greetings)

    @workflow.update
    def set_prefix(self, prefix: str) -> str:
        old, self.prefix = self.prefix, prefix
        return old

    @set_prefix.validator
    def _check_prefix(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("a prefix cannot be empty")


@workflow.defn
class Adder:
    @workflow.run
    async def run(self, a: int, b: int) -> int:
        if a < 0:
            raise ApplicationError("negative input", type="BadInput", non_retryable=True)
        return a + b


async def test_execute_prints_the_result_or_the_failure(node, client: Client) -> None:
    tq = f"cli-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Adder]):
        ok = await shoal(node, "execute", "--type", "Adder", "-t", tq, "-i", "2", "-i", "3",
                         "--json")
        assert ok.code == 0, ok.err
        assert ok.json()["result"] == 5 and ok.json()["status"] == "Completed"
        plain = await shoal(node, "execute", "--type", "Adder", "-t", tq, "-i", "4", "-i", "4")
        assert plain.code == 0 and "Completed" in plain.out and "8" in plain.out
        bad = await shoal(node, "execute", "--type", "Adder", "-t", tq, "-i", "-1", "-i", "0",
                          "--json")
    assert bad.code == 1
    assert bad.json()["status"] == "Failed"
    assert bad.json()["failure"]["message"] == "negative input"


async def test_a_workflow_driven_from_the_shell(node, client: Client) -> None:
    tq, wf = f"cli-{uuid.uuid4()}", f"greeter-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Greeter]):
        started = await shoal(node, "start", "--type", "Greeter", "--task-queue", tq,
                              "--workflow-id", wf, "--input", '"ann"',
                              "--search-attribute", 'Team="blue"', "--memo", 'owner={"n": 1}',
                              "--json")
        assert started.code == 0, started.err
        run_id = started.json()["run_id"]

        again = await shoal(node, "start", "--type", "Greeter", "-t", tq, "-w", wf,
                            "--id-reuse-policy", "RejectDuplicate")
        assert again.code == 1 and "WORKFLOW_ALREADY_STARTED" in again.err
        assert f"is already running (run {run_id})" in again.err  # the node's own reason
        assert again.err.count("\n") == 1  # one line

        assert (await shoal(node, "signal", "-w", wf, "--name", "greet", "-i", '"bob"',
                            "-i", "2")).code == 0
        query = await shoal(node, "query", "-w", wf, "--type", "count", "--json")
        assert query.code == 0 and query.json() == {"result": 2}

        upd = await shoal(node, "update", "-w", wf, "--name", "set_prefix", "-i", '"Hi"')
        assert upd.code == 0 and json.loads(upd.out) == "Hello"
        rejected = await shoal(node, "update", "-w", wf, "--name", "set_prefix", "-i", '""')
        assert rejected.code == 1 and "a prefix cannot be empty" in rejected.err
        await shoal(node, "signal", "-w", wf, "--name", "greet", "-i", '"cy"', "-i", "1")

        desc = await shoal(node, "describe", "-w", wf, "--json")
        info = desc.json()["info"]
        assert info["status"] == "Running" and info["run_id"] == run_id
        assert info["memo"] == {"owner": {"n": 1}} and info["search_attributes"] == {"Team": "blue"}
        table = await shoal(node, "describe", "-w", wf)
        assert "Running" in table.out and 'Team = "blue"' in table.out

        listed = await shoal(node, "list", "--query", f"WorkflowId = '{wf}' AND Team = 'blue'",
                             "--json")
        assert [r["workflow_id"] for r in listed.json()] == [wf]
        rows = await shoal(node, "list", "-q", f"TaskQueue = '{tq}'")
        assert wf in rows.out and "Running" in rows.out
        counted = await shoal(node, "count", "-q", f"TaskQueue = '{tq}' GROUP BY ExecutionStatus",
                              "--json")
        assert counted.json() == {"count": 1, "groups": [{"status": "Running", "count": 1}]}

        await shoal(node, "signal", "-w", wf, "--name", "finish")
        result = await shoal(node, "result", "-w", wf, "--json")
        assert result.code == 0
        assert result.json()["result"] == {"name": "ann", "greetings": [
            "Hello, bob", "Hello, bob", "Hi, cy"]}

    history = await shoal(node, "history", "-w", wf, "--json")
    types = [e["event_type"] for e in history.json()]
    assert types[0] == "WorkflowExecutionStarted" and types[-1] == "WorkflowExecutionCompleted"
    assert types.count("WorkflowExecutionSignaled") == 3
    assert "WorkflowExecutionUpdateCompleted" in types
    signaled = [e for e in history.json() if e["event_type"] == "WorkflowExecutionSignaled"][0]
    assert signaled["attributes"]["input"] == ["bob", 2]
    view = await shoal(node, "history", "-w", wf)
    assert view.code == 0 and "WorkflowExecutionCompleted" in view.out
    temporal = await shoal(node, "history", "-w", wf, "--output", "json")
    assert temporal.code == 0, temporal.err
    parsed = WorkflowHistory.from_json(wf, temporal.out)  # Temporal's history JSON
    assert parsed.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    closed = await shoal(node, "signal", "-w", wf, "--name", "finish")
    assert closed.code == 1 and "WORKFLOW_NOT_RUNNING" in closed.err


async def test_cancel_and_terminate(node, client: Client) -> None:
    tq = f"cli-{uuid.uuid4()}"
    a, b = f"c-{uuid.uuid4()}", f"t-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Greeter]):
        for wf in (a, b):
            assert (await shoal(node, "start", "--type", "Greeter", "-t", tq, "-w", wf,
                                "-i", '"x"')).code == 0
        assert (await shoal(node, "cancel", "-w", a)).code == 0
        cancelled = await shoal(node, "result", "-w", a, "--json")
        assert cancelled.code == 0 and cancelled.json()["result"]["cancelled"] is True
        assert (await shoal(node, "terminate", "-w", b, "--reason", "operator said so")).code == 0
        terminated = await shoal(node, "result", "-w", b)
    assert terminated.code == 1
    assert "Terminated" in terminated.out and "operator said so" in terminated.out


async def test_errors_are_one_actionable_line(node) -> None:
    missing = await shoal(node, "describe", "-w", f"nope-{uuid.uuid4()}")
    assert missing.code == 1 and "does not exist" in missing.err and "[NOT_FOUND]" in missing.err
    bad_query = await shoal(node, "list", "-q", "WorkflowType = ")
    assert bad_query.code == 1 and "position" in bad_query.err
    unreachable = await shoal(node, "list", address="ws://127.0.0.1:1")
    assert unreachable.code == 1 and "cannot reach a node at ws://127.0.0.1:1" in unreachable.err
    not_json = await shoal(node, "start", "--type", "X", "-t", "q", "-i", "ann")
    assert not_json.code == 2 and "is not JSON" in not_json.err
    for out in (missing, bad_query, unreachable):
        assert out.err.count("\n") == 1 and "Traceback" not in out.err


async def test_ids_and_payloads_with_brackets_are_shown_not_parsed(node, client: Client) -> None:
    tq, wf = f"cli-{uuid.uuid4()}", f"order[/{uuid.uuid4()}] [bold]"
    async with Worker(client, task_queue=tq, workflows=[Greeter]):
        started = await shoal(node, "start", "--type", "Greeter", "-t", tq, "-w", wf,
                              "-i", '"[/ann]"')
        assert started.code == 0, started.err
        assert f"Started workflow {wf} run" in started.out
        assert (await shoal(node, "signal", "-w", wf, "--name", "greet", "-i", '"[/bob]"',
                            "-i", "1")).code == 0
        desc = await shoal(node, "describe", "-w", wf)
        assert desc.code == 0 and wf in desc.out, desc.err
        rows = await shoal(node, "list", "-q", f"TaskQueue = '{tq}'")
        assert rows.code == 0 and wf in rows.out, rows.err
        view = await shoal(node, "history", "-w", wf)
        assert view.code == 0 and '"[/bob]"' in view.out and wf in view.out, view.err
        await shoal(node, "signal", "-w", wf, "--name", "finish")
        done = await shoal(node, "result", "-w", wf)
        assert done.code == 0 and "Hello, [/bob]" in done.out, done.err
    missing = await shoal(node, "describe", "-w", f"gone[/{uuid.uuid4()}]")
    assert missing.code == 1 and "gone[/" in missing.err and "[NOT_FOUND]" in missing.err
    assert missing.err.count("\n") == 1 and "Traceback" not in missing.err
