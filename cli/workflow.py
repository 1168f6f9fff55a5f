"""``shoal workflow ...``: start, inspect and steer workflows from a shell.

Owns: the options a Temporal CLI user reaches for (``--workflow-id``, ``--type``,
``--task-queue``, ``--input`` as JSON, ``--query``), talking to a node through the SDK
client, and showing answers as rich tables or, with ``--json``, as JSON on stdout.
Must not: import ``shoal.node`` (a client command stays light and runs anywhere).

Every error is one line on stderr naming what to fix, with exit code 1 (2 for bad options,
as typer does); a workflow that closed without a result also exits 1.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import typer
from rich.table import Table

from shoal import wire
from shoal.cli import render
from shoal.cli.remote import ADDRESS, JSON_OUT
from shoal.cli.remote import call as _call
from shoal.cli.remote import fail as _fail
from shoal.cli.remote import out as _out

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


def _duration(option: str, text: str | None) -> float | None:
    """``90``, ``1.5s``, ``500ms``, ``10m``, ``2h``, ``1d`` -> seconds."""
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
    if seconds <= 0:
        raise typer.BadParameter("must be more than zero", param_hint=option)
    return seconds


def _handle(client: Any, workflow_id: str, run_id: str) -> Any:
    return client.get_workflow_handle(workflow_id, run_id=run_id or None)


def _execution(workflow_id: str, run_id: str) -> wire.WorkflowExecution:
    return wire.WorkflowExecution(workflow_id=workflow_id, run_id=run_id)


# --- start / execute / result -----------------------------------------------------------

_REUSE = {
    "AllowDuplicate": wire.IdReusePolicy.ALLOW_DUPLICATE,
    "AllowDuplicateFailedOnly": wire.IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    "RejectDuplicate": wire.IdReusePolicy.REJECT_DUPLICATE,
    "TerminateIfRunning": wire.IdReusePolicy.TERMINATE_IF_RUNNING,
}


def _start_request(
    workflow_type: str, task_queue: str, workflow_id: str | None, inputs: list[str] | None,
    execution_timeout: str | None, run_timeout: str | None, task_timeout: str | None,
    id_reuse_policy: str, search_attributes: list[str] | None, memo: list[str] | None,
) -> wire.StartWorkflowRequest:
    from shoal.sdk.converter import DataConverter, encode_search_attributes

    if id_reuse_policy not in _REUSE:
        raise typer.BadParameter(f"one of {', '.join(_REUSE)}", param_hint="--id-reuse-policy")
    conv = DataConverter.default
    try:
        attrs = encode_search_attributes(_pairs("--search-attribute", search_attributes))
    except TypeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--search-attribute") from None
    return wire.StartWorkflowRequest(
        workflow_id=workflow_id or str(uuid.uuid4()), workflow_type=workflow_type,
        task_queue=task_queue, request_id=str(uuid.uuid4()),
        input=conv.to_payloads(_inputs(inputs)), id_reuse_policy=_REUSE[id_reuse_policy],
        workflow_execution_timeout_s=_duration("--execution-timeout", execution_timeout),
        workflow_run_timeout_s=_duration("--run-timeout", run_timeout),
        workflow_task_timeout_s=_duration("--task-timeout", task_timeout),
        memo={k: conv.to_payload(v) for k, v in _pairs("--memo", memo).items()},
        search_attributes=attrs, identity="shoal-cli",
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
    req = _start_request(workflow_type, task_queue, workflow_id, input, execution_timeout,
                         run_timeout, task_timeout, id_reuse_policy, search_attribute, memo)
    resp = _call(address, namespace,
                 lambda c: c.service.call(wire.Op.START_WORKFLOW, req))
    _print_started(req.workflow_id, resp.run_id, as_json)


def _print_started(workflow_id: str, run_id: str, as_json: bool) -> None:
    if as_json:
        print(render.to_json({"workflow_id": workflow_id, "run_id": run_id}))
    else:
        _out().print(f"[green]Started[/green] workflow [bold]{workflow_id}[/bold] run {run_id}")


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
    req = _start_request(workflow_type, task_queue, workflow_id, input, execution_timeout,
                         run_timeout, task_timeout, id_reuse_policy, search_attribute, memo)

    async def go(client: Any) -> tuple[str, wire.GetResultResponse]:
        started = await client.service.call(wire.Op.START_WORKFLOW, req)
        if not as_json:
            _print_started(req.workflow_id, started.run_id, False)
        return started.run_id, await _wait_result(client, req.workflow_id, started.run_id)

    run_id, resp = _call(address, namespace, go)
    _print_result(req.workflow_id, resp, as_json)


async def _wait_result(client: Any, workflow_id: str, run_id: str) -> wire.GetResultResponse:
    """Long-poll until the chain that ``run_id`` starts closes (following continue-as-new)."""
    while True:
        resp = await client.service.call(wire.Op.GET_RESULT, wire.GetResultRequest(
            execution=_execution(workflow_id, run_id), wait_s=30.0, follow_runs=True))
        if resp.status != wire.WorkflowExecutionStatus.RUNNING:
            return resp


def _print_result(workflow_id: str, resp: wire.GetResultResponse, as_json: bool) -> None:
    ok = resp.status == wire.WorkflowExecutionStatus.COMPLETED
    result = [render.decode_payload(p) for p in resp.result or []]
    value = result[0] if len(result) == 1 else (result or None)
    if as_json:
        out: dict[str, Any] = {"workflow_id": workflow_id, "run_id": resp.run_id,
                               "status": render.status_name(resp.status)}
        if ok:
            out["result"] = value
        if resp.failure is not None:
            out["failure"] = render.plain(resp.failure)
        print(render.to_json(out))
    else:
        con = _out()
        con.print(render.status_text(resp.status).append(f"  run {resp.run_id}", style="default"))
        if ok:
            con.print(render.to_json(value), markup=False)
        elif resp.failure is not None:
            con.print(f"[red]{render.failure_line(resp.failure)}[/red]", markup=True)
    if not ok:
        raise typer.Exit(1)


@app.command("result")
def result(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Wait for a workflow to close and print its result (exit 1 if it did not complete)."""
    resp = _call(address, namespace, lambda c: _wait_result(c, workflow_id, run_id))
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

    async def go(client: Any) -> list[wire.WorkflowExecutionInfo]:
        found: list[wire.WorkflowExecutionInfo] = []
        async for run in client.list_workflows(query, page_size=min(limit, 1000)):
            found.append(run.raw_info)
            if len(found) >= limit:
                break
        return found

    runs = _call(address, namespace, go)
    if as_json:
        print(render.to_json([_info_plain(i) for i in runs]))
        return
    table = Table(box=None, header_style="bold")
    for col in ("Status", "Workflow ID", "Type", "Task queue", "Start", "Close"):
        table.add_column(col)
    for info in runs:
        table.add_row(render.status_text(info.status), info.workflow_id, info.workflow_type,
                      info.task_queue, render.when(info.start_time), render.when(info.close_time))
    con = _out()
    con.print(table) if runs else con.print("[dim]no workflows match[/dim]")


def _info_plain(info: wire.WorkflowExecutionInfo) -> dict[str, Any]:
    out = render.plain(info)
    out["status"] = render.status_name(info.status)
    for key in ("start_time", "close_time", "execution_time"):
        value = getattr(info, key)
        if value is not None:
            out[key] = render.when(value)
    return out


@app.command("count")
def count(
    query: str = typer.Option("", "--query", "-q",
                              help="A list filter; add GROUP BY ExecutionStatus for groups."),
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Count the runs a list filter accepts."""
    resp = _call(address, namespace, lambda c: c.service.call(
        wire.Op.COUNT_WORKFLOWS, wire.CountWorkflowsRequest(query=query)))
    groups = [{"status": render.status_name(g.status), "count": g.count} for g in resp.groups]
    if as_json:
        print(render.to_json({"count": resp.count, **({"groups": groups} if groups else {})}))
        return
    con = _out()
    con.print(f"Total: [bold]{resp.count}[/bold]")
    for g in resp.groups:
        con.print(render.status_text(g.status).append(f"  {g.count}", style="default"))


@app.command("describe")
def describe(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Show a run: status, times, search attributes, memo, pending work, last task failure."""
    resp: wire.DescribeWorkflowResponse = _call(address, namespace, lambda c: c.service.call(
        wire.Op.DESCRIBE_WORKFLOW,
        wire.DescribeWorkflowRequest(execution=_execution(workflow_id, run_id))))
    info = resp.info
    if as_json:
        out = render.plain(resp)
        out["info"] = _info_plain(info)
        print(render.to_json(out))
        return
    con = _out()
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in [
        ("Workflow ID", info.workflow_id), ("Run ID", info.run_id),
        ("Type", info.workflow_type), ("Task queue", info.task_queue),
        ("Status", render.status_text(info.status)), ("Start", render.when(info.start_time)),
        ("Close", render.when(info.close_time)), ("History length", str(info.history_length)),
    ]:
        if value:
            summary.add_row(label, value)
    con.print(summary)
    for title, values in (("Search attributes", info.search_attributes), ("Memo", info.memo)):
        if values:
            con.print(f"\n[bold]{title}[/bold]")
            for key, raw in sorted(values.items()):
                con.print(f"  {key} = {render.compact(render.decode_payload(raw))}", markup=False)
    if resp.pending_activities:
        table = Table(title="Pending activities", title_justify="left", box=None,
                      header_style="bold")
        for col in ("Activity ID", "Type", "State", "Attempt", "Last failure"):
            table.add_column(col)
        for a in resp.pending_activities:
            table.add_row(a.activity_id, a.activity_type, a.state, str(a.attempt),
                          render.failure_line(a.last_failure) if a.last_failure else "")
        con.print()
        con.print(table)
    if resp.pending_workflow_task is not None:
        wt = resp.pending_workflow_task
        con.print(f"\n[bold]Pending workflow task[/bold]  {wt.state}, attempt {wt.attempt}")
    if resp.last_workflow_task_failure is not None:
        con.print(f"\n[bold red]Last workflow task failure[/bold red]  "
                  f"{render.failure_line(resp.last_workflow_task_failure)}", markup=True)


@app.command("history")
def history(
    workflow_id: str = WORKFLOW_ID, run_id: str = RUN_ID,
    address: str = ADDRESS, namespace: str = NAMESPACE, as_json: bool = JSON_OUT,
) -> None:
    """Show a run's history: one coloured line per event (all attributes with --json)."""

    async def go(client: Any) -> list[wire.HistoryEvent]:
        return [e.raw async for e in _handle(client, workflow_id, run_id).fetch_history_events()]

    events = _call(address, namespace, go)
    if as_json:
        print(render.to_json([
            {"event_id": e.event_id, "event_time": render.when(e.event_time),
             "event_type": render.event_type_name(e.event_type),
             "attributes": render.plain(e.attributes)} for e in events]))
        return
    table = Table(box=None, header_style="bold")
    table.add_column("ID", justify="right")
    table.add_column("Time", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Details", overflow="fold")
    for e in events:
        name = render.event_type_name(e.event_type)
        table.add_row(str(e.event_id), render.time_of_day(e.event_time),
                      f"[{render.event_style(name)}]{name}[/]", render.event_summary(e))
    con = _out()
    if events:
        con.print(f"[dim]{workflow_id} run {run_id or 'current'}, from "
                  f"{render.when(events[0].event_time)}[/dim]")
    con.print(table)


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

    async def go(client: Any) -> Any:
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

    async def go(client: Any) -> Any:
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
        print(render.to_json({"ok": True, "workflow_id": workflow_id}))
    else:
        _out().print(f"[green]{what}[/green]: {workflow_id}")
