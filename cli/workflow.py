"""``shoal workflow ...``: start, inspect and steer workflows from a shell.

Owns: the options a Temporal CLI user reaches for (``--workflow-id``, ``--type``,
``--task-queue``, ``--input`` as JSON, ``--query``), talking to a node through the SDK
client, and showing answers as rich tables or, with ``--json``, as JSON on stdout.
Must not: import ``shoal.node`` (a client command stays light and runs anywhere), build
wire requests (it calls typed ``Client`` / ``WorkflowHandle`` methods), or lay out output
(``render.py`` does).

Every error is one line on stderr naming what to fix, with exit code 1 (2 for bad options,
as typer does); a workflow that closed without a result also exits 1.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import typer

from shoal import wire
from shoal.cli import render
from shoal.cli.remote import ADDRESS, JSON_OUT
from shoal.cli.remote import call as _call
from shoal.cli.remote import fail as _fail
from shoal.cli.remote import out as _out

if TYPE_CHECKING:  # the SDK is imported when a command runs: `shoal --help` stays quick
    from shoal.sdk.client import Client, WorkflowHandle

app = typer.Typer(help="Start, inspect and steer workflows.", no_args_is_help=True)

# --- shared options ---------------------------------------------------------------------

NAMESPACE = typer.Option(wire.DEFAULT_NAMESPACE, "--namespace", "-n", envvar="SHOAL_NAMESPACE")
WORKFLOW_ID = typer.Option(..., "--workflow-id", "-w", help="The workflow id.")
RUN_ID = typer.Option("", "--run-id", "-r", help="A run of it; default: the current run.")
INPUT = typer.Option(None, "--input", "-i",
                     help="An argument as JSON; repeat it for several arguments.")


def _parse_json(option: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{text!r} is not JSON ({exc.msg}); strings need quotes, e.g. '\"hello\"'",
            param_hint=option) from None


def _inputs(values: list[str] | None) -> list[Any]:
    return [_parse_json("--input", v) for v in values or []]


def _pairs(option: str, values: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=JSON (e.g. Customer='\"ann\"')",
                                     param_hint=option)
        out[key] = _parse_json(option, raw)
    return out


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(option: str, text: str | None) -> timedelta | None:
    """``90``, ``1.5s``, ``500ms``, ``10m``, ``2h``, ``1d`` -> a timedelta."""
    if text is None:
        return None
    num, unit = text.rstrip("smhd"), text[len(text.rstrip("smhd")):]
    if text.endswith("ms"):
        num, unit = text[:-2], "ms"
    try:
        seconds = float(num) * _UNITS[unit or "s"]
    except (ValueError, KeyError):
        raise typer.BadParameter(f"{text!r} is not a duration like 30s, 500ms, 10m or 2h",
                                 param_hint=option) from None
    # Below a microsecond a timedelta is zero: refuse it as zero rather than send no timeout.
    if timedelta(seconds=seconds) <= timedelta(0):
        raise typer.BadParameter("must be more than zero", param_hint=option)
    return timedelta(seconds=seconds)


def _handle(client: Client, workflow_id: str, run_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(workflow_id, run_id=run_id or None)


# --- start / execute / result -----------------------------------------------------------

# Temporal CLI's names -> ``WorkflowIDReusePolicy`` members.
_REUSE = {
    "AllowDuplicate": "ALLOW_DUPLICATE",
    "AllowDuplicateFailedOnly": "ALLOW_DUPLICATE_FAILED_ONLY",
    "RejectDuplicate": "REJECT_DUPLICATE",
    "TerminateIfRunning": "TERMINATE_IF_RUNNING",
}


def _start_options(
    workflow_type: str, task_queue: str, workflow_id: str | None, inputs: list[str] | None,
    execution_timeout: str | None, run_timeout: str | None, task_timeout: str | None,
    id_reuse_policy: str, search_attributes: list[str] | None, memo: list[str] | None,
) -> dict[str, Any]:
    """The options as ``Client.start_workflow`` keywords, checked before any connection."""
    from shoal.sdk.common import WorkflowIDReusePolicy
    from shoal.sdk.converter import encode_search_attributes

    if id_reuse_policy not in _REUSE:
        raise typer.BadParameter(f"one of {', '.join(_REUSE)}", param_hint="--id-reuse-policy")
    attrs = _pairs("--search-attribute", search_attributes)
    try:
        encode_search_attributes(attrs)  # the client encodes them; refuse bad ones as an option
    except TypeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--search-attribute") from None
    return dict(
        workflow=workflow_type, args=_inputs(inputs), id=workflow_id or str(uuid.uuid4()),
        task_queue=task_queue, id_reuse_policy=WorkflowIDReusePolicy[_REUSE[id_reuse_policy]],
        execution_timeout=_duration("--execution-timeout", execution_timeout),
        run_timeout=_duration("--run-timeout", run_timeout),
        task_timeout=_duration("--task-timeout", task_timeout),
        memo=_pairs("--memo", memo), search_attributes=attrs,
    )


StartType = typer.Option(..., "--type", help="The workflow type (its registered name).")
TaskQueue = typer.Option(..., "--task-queue", "-t", help="The task queue its workers poll.")
NewWorkflowId = typer.Option(None, "--workflow-id", "-w", help="Default: a new UUID.")
ExecTimeout = typer.Option(None, "--execution-timeout", help="Whole chain, e.g. 1h.")
RunTimeout = typer.Option(None, "--run-timeout", help="One run, e.g. 10m.")
TaskTimeout = typer.Option(None, "--task-timeout", help="One workflow task (default 10s).")
ReusePolicy = typer.Option("AllowDuplicate", "--id-reuse-policy",
                           help="AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate "
                                "or TerminateIfRunning.")
SearchAttr = typer.Option(None, "--search-attribute",
                          help="KEY=JSON, repeatable: a custom search attribute.")
Memo = typer.Option(None, "--memo", help="KEY=JSON, repeatable: a memo entry.")


@app.command("start")
def start(
    workflow_type: str = StartType, task_queue: str = TaskQueue,
    workflow_id: str = NewWorkflowId, input: list[str] = INPUT,
    execution_timeout: str = ExecTimeout, run_timeout: str = RunTimeout,
    task_timeout: str = TaskTimeout, id_reuse_policy: str = ReusePolicy,
    search_attribute: list[str] = SearchAttr, memo: list[str] = Memo,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Start a workflow and print its id and run id."""
    opts = _start_options(workflow_type, task_queue, workflow_id, input, execution_timeout,
                          run_timeout, task_timeout, id_reuse_policy, search_attribute, memo)
    handle = _call(address, namespace, lambda c: c.start_workflow(**opts))
    _print_started(handle.id, handle.result_run_id or "", as_json)


def _print_started(workflow_id: str, run_id: str, as_json: bool) -> None:
    if as_json:
        print(render.to_json(render.started_json(workflow_id, run_id)))
    else:
        _out().print(render.started_line(workflow_id, run_id))


@app.command("execute")
def execute(
    workflow_type: str = StartType, task_queue: str = TaskQueue,
    workflow_id: str = NewWorkflowId, input: list[str] = INPUT,
    execution_timeout: str = ExecTimeout, run_timeout: str = RunTimeout,
    task_timeout: str = TaskTimeout, id_reuse_policy: str = ReusePolicy,
    search_attribute: list[str] = SearchAttr, memo: list[str] = Memo,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Start a workflow, wait for it to close, and print its result (exit 1 if it failed)."""
    opts = _start_options(workflow_type, task_queue, workflow_id, input, execution_timeout,
                          run_timeout, task_timeout, id_reuse_policy, search_attribute, memo)

    async def go(client: Client) -> wire.GetResultResponse:
        handle = await client.start_workflow(**opts)
        if not as_json:
            _print_started(handle.id, handle.result_run_id or "", False)
        return await handle.outcome(follow_runs=True)

    _print_result(opts["id"], _call(address, namespace, go), as_json)


def _print_result(workflow_id: str, resp: wire.GetResultResponse, as_json: bool) -> None:
    if as_json:
        print(render.to_json(render.result_json(workflow_id, resp)))
    else:
        _out().print(render.result_view(resp))
    if resp.status != wire.WorkflowExecutionStatus.COMPLETED:
        raise typer.Exit(1)


@app.command("result")
def result(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Wait for a workflow to close and print its result (exit 1 if it did not complete)."""
    resp = _call(address, namespace,
                 lambda c: _handle(c, workflow_id, run_id).outcome(follow_runs=True))
    _print_result(workflow_id, resp, as_json)


# --- list / count / describe / history --------------------------------------------------


@app.command("list")
def list_(
    query: str = typer.Option("", "--query", "-q",
                              help="A list filter, e.g. \"WorkflowType = 'Order' AND "
                                   "ExecutionStatus = 'Running'\"."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many runs."),
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """List runs, newest first (or as the query's ORDER BY says)."""

    async def go(client: Client) -> list[wire.WorkflowExecutionInfo]:
        found: list[wire.WorkflowExecutionInfo] = []
        async for run in client.list_workflows(query, page_size=min(limit, 1000)):
            found.append(run.raw_info)
            if len(found) >= limit:
                break
        return found

    runs = _call(address, namespace, go)
    if as_json:
        print(render.to_json([render.info_json(i) for i in runs]))
    else:
        _out().print(render.runs_view(runs))


@app.command("count")
def count(
    query: str = typer.Option("", "--query", "-q",
                              help="A list filter; add GROUP BY ExecutionStatus for groups."),
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Count the runs a list filter accepts."""
    counted = _call(address, namespace, lambda c: c.count_workflows(query))
    groups = [(int(status), n) for status, n in counted.groups]
    if as_json:
        print(render.to_json(render.count_json(counted.count, groups)))
    else:
        _out().print(render.count_view(counted.count, groups))


@app.command("describe")
def describe(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Show a run: status, times, search attributes, memo, pending work, last task failure."""

    async def go(client: Client) -> wire.DescribeWorkflowResponse:
        described = await _handle(client, workflow_id, run_id).describe()
        assert described.raw_description is not None  # describe() always keeps the answer
        return described.raw_description

    resp = _call(address, namespace, go)
    if as_json:
        print(render.to_json(render.describe_json(resp)))
    else:
        _out().print(render.describe_view(resp))


@app.command("history")
def history(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
    output: str = typer.Option("text", "--output", "-o",
                               help="text, or json: Temporal's history JSON (as `temporal "
                                    "workflow show --output json`; WorkflowHistory.from_json "
                                    "and Replayer read it)."),
) -> None:
    """Show a run's history: one coloured line per event (all attributes with --json)."""
    if output not in ("text", "json"):
        raise typer.BadParameter(f"{output!r}: use text or json", param_hint="--output")

    async def go(client: Client) -> list[wire.HistoryEvent]:
        return [e.raw async for e in _handle(client, workflow_id, run_id).fetch_history_events()]

    events = _call(address, namespace, go)
    if output == "json":
        print(render.temporal_history_json(workflow_id, events))
    elif as_json:
        print(render.to_json(render.history_json(events)))
    else:
        _out().print(render.history_view(workflow_id, run_id, events))


# --- signal / query / update / cancel / terminate --------------------------------------

NAME = typer.Option(..., "--name", help="The handler's name.")


@app.command("signal")
def signal(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID, name: str = NAME,
    input: list[str] = INPUT, address: str = ADDRESS, namespace: str = NAMESPACE,
    as_json: bool = JSON_OUT,
) -> None:
    """Send a signal (recorded in history before this returns)."""
    args = _inputs(input)
    _call(address, namespace, lambda c: _handle(c, workflow_id, run_id).signal(name, args=args))
    _done(as_json, "signal sent", workflow_id)


@app.command("query")
def query(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    name: str = typer.Option(..., "--type", "--name", help="The query's name."),
    input: list[str] = INPUT, address: str = ADDRESS, namespace: str = NAMESPACE,
    as_json: bool = JSON_OUT,
) -> None:
    """Run a query handler on the run's current state and print its answer."""
    args = _inputs(input)

    async def go(client: Client) -> Any:
        from shoal.sdk.client import WorkflowQueryFailedError

        try:
            return await _handle(client, workflow_id, run_id).query(name, args=args)
        except WorkflowQueryFailedError as exc:
            _fail(f"the query failed: {exc}")

    value = _call(address, namespace, go)
    print(render.to_json({"result": render.plain(value)} if as_json else render.plain(value)))


@app.command("update")
def update(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID, name: str = NAME,
    input: list[str] = INPUT,
    update_id: str = typer.Option(None, "--update-id", help="Retries with one id run once."),
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Run an update handler in the running workflow and print its result."""
    args = _inputs(input)

    async def go(client: Client) -> Any:
        from shoal.sdk.client import WorkflowUpdateFailedError

        try:
            return await _handle(client, workflow_id, run_id).execute_update(
                name, args=args, id=update_id)
        except WorkflowUpdateFailedError as exc:
            _fail(f"the update failed: {exc.cause}")

    value = _call(address, namespace, go)
    print(render.to_json({"result": render.plain(value)} if as_json else render.plain(value)))


@app.command("cancel")
def cancel(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Ask a run to cancel; its code sees CancelledError and decides what to do."""
    _call(address, namespace, lambda c: _handle(c, workflow_id, run_id).cancel())
    _done(as_json, "cancellation requested", workflow_id)


@app.command("terminate")
def terminate(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    reason: str = typer.Option("", "--reason", help="Recorded in the Terminated event."),
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Close a run at once as Terminated; no workflow code runs."""
    _call(address, namespace,
          lambda c: _handle(c, workflow_id, run_id).terminate(reason=reason or None))
    _done(as_json, "terminated", workflow_id)


def _done(as_json: bool, what: str, workflow_id: str) -> None:
    if as_json:
        print(render.to_json(render.done_json(workflow_id)))
    else:
        _out().print(render.done_line(what, workflow_id))
