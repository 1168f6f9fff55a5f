"""How the client-side commands show things: JSON values, payloads, times, statuses, events.

Owns: every table and text the client-side commands print (``shoal workflow ...`` and
``shoal cluster ...``): wire values as JSON-ready plain values (payloads decoded with the
default converter) and as rich renderables (coloured statuses, run tables, the describe and
history views, the cluster tables). User text (ids, names, messages, payloads) goes in as
``Text``, never inside markup, so a ``[`` in it is shown, not parsed.
Must not: talk to a node, or import anything of shoal but ``wire``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
from typing import Any

import cbor2
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from shoal import wire
from shoal.sdk.history import HistoryEvent, WorkflowHistory

# Fields whose bytes are payloads (one CBOR value each): shown decoded, not as bytes.
_PAYLOAD_LIST_FIELDS = {"input", "result", "details", "heartbeat_details", "last_completion_result",
                        "last_heartbeat_details", "query_args", "signal_input"}


def status_name(status: int) -> str:
    """``CONTINUED_AS_NEW`` -> ``ContinuedAsNew`` (the names list queries and Temporal use)."""
    return "".join(p.capitalize() for p in wire.WorkflowExecutionStatus(status).name.split("_"))


def event_type_name(event_type: int) -> str:
    """``WORKFLOW_TASK_STARTED`` -> ``WorkflowTaskStarted``."""
    return "".join(p.capitalize() for p in wire.EventType(event_type).name.split("_"))


_STATUS_STYLE = {
    wire.WorkflowExecutionStatus.RUNNING: "bold blue",
    wire.WorkflowExecutionStatus.COMPLETED: "bold green",
    wire.WorkflowExecutionStatus.FAILED: "bold red",
    wire.WorkflowExecutionStatus.CANCELED: "yellow",
    wire.WorkflowExecutionStatus.TERMINATED: "red",
    wire.WorkflowExecutionStatus.CONTINUED_AS_NEW: "cyan",
    wire.WorkflowExecutionStatus.TIMED_OUT: "red",
}


def status_text(status: int) -> Text:
    """A status name in its colour (``Running`` blue, ``Failed`` red, ...)."""
    return Text(status_name(status), style=_STATUS_STYLE[wire.WorkflowExecutionStatus(status)])


def event_style(name: str) -> str:
    """Colour by what an event means: failures red, completions green, signals magenta."""
    if name.endswith(("Failed", "TimedOut", "Terminated")):
        return "red"
    if name.endswith(("Completed", "Fired")):
        return "green"
    if "Signal" in name or "Update" in name:
        return "magenta"
    if name.startswith("Timer"):
        return "yellow"
    if "Cancel" in name:
        return "yellow"
    if name.startswith("WorkflowTask"):
        return "dim"
    return "cyan"


def when(ts: float | None) -> str:
    """An instant as local ISO-8601 with milliseconds, or '' for none."""
    if ts is None:
        return ""
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def time_of_day(ts: float) -> str:
    """``HH:MM:SS.mmm`` local: enough to read a history's pace in a narrow column."""
    return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S.%f")[:-3]


def decode_payload(raw: bytes) -> Any:
    """A payload's value for showing; bytes that are not CBOR are shown as base64."""
    try:
        return plain(cbor2.loads(raw))
    except Exception:  # noqa: BLE001 - not ours to decode: show the bytes
        return "base64:" + base64.b64encode(raw).decode()


def plain(value: Any, field_name: str = "") -> Any:
    """A wire value (dataclass, enum, payloads, bytes) as JSON-ready plain values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or v == [] or v == {} or v == "":
                continue
            out[f.name] = plain(v, f.name)
        return out
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (bytes, bytearray)):
        if field_name in _PAYLOAD_LIST_FIELDS or field_name in ("memo", "search_attributes"):
            return decode_payload(bytes(value))
        return "base64:" + base64.b64encode(value).decode()
    if isinstance(value, dict):
        payloads = field_name in ("memo", "search_attributes", "header")
        return {
            str(k): (decode_payload(v) if payloads and isinstance(v, bytes) else plain(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        if field_name in _PAYLOAD_LIST_FIELDS:
            return [decode_payload(v) if isinstance(v, bytes) else plain(v) for v in value]
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def to_json(value: Any) -> str:
    """Indented JSON for stdout (non-ASCII kept; anything else as ``str``)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def compact(value: Any, limit: int = 120) -> str:
    """One line of JSON, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_line(failure: wire.Failure) -> str:
    """``message (type)``, then each cause: what a person reads first."""
    parts = []
    f: wire.Failure | None = failure
    while f is not None:
        kind = f.type or f.kind.name.lower()
        parts.append(f"{f.message} ({kind})" if kind else f.message)
        f = f.cause
    return " <- caused by: ".join(parts)


def event_summary(event: wire.HistoryEvent) -> str:
    """The attributes worth a glance, as one line (ids and payloads first)."""
    attrs = plain(event.attributes)
    if not isinstance(attrs, dict):
        return ""
    noisy = {"identity", "request_id", "workflow_task_completed_event_id", "header"}
    shown = {k: v for k, v in attrs.items() if k not in noisy}
    failure = getattr(event.attributes, "failure", None)
    if "failure" in shown and isinstance(failure, wire.Failure):
        shown["failure"] = failure_line(failure)
    return compact(shown)


# --- workflow commands ------------------------------------------------------------------


def started_json(workflow_id: str, run_id: str) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "run_id": run_id}


def started_line(workflow_id: str, run_id: str) -> Text:
    """``Started workflow ID run RUN``."""
    return Text.assemble(("Started", "green"), " workflow ", (workflow_id, "bold"),
                         f" run {run_id}")


def _result_value(resp: wire.GetResultResponse) -> Any:
    result = [decode_payload(p) for p in resp.result or []]
    return result[0] if len(result) == 1 else (result or None)


def result_json(workflow_id: str, resp: wire.GetResultResponse) -> dict[str, Any]:
    """A closed run: status, and its result if it completed or its failure if it has one."""
    out: dict[str, Any] = {"workflow_id": workflow_id, "run_id": resp.run_id,
                           "status": status_name(resp.status)}
    if resp.status == wire.WorkflowExecutionStatus.COMPLETED:
        out["result"] = _result_value(resp)
    if resp.failure is not None:
        out["failure"] = plain(resp.failure)
    return out


def result_view(resp: wire.GetResultResponse) -> Group:
    """The status line, then the result as JSON or the failure in red."""
    parts: list[RenderableType] = [
        status_text(resp.status).append(f"  run {resp.run_id}", style="default")]
    if resp.status == wire.WorkflowExecutionStatus.COMPLETED:
        parts.append(Text(to_json(_result_value(resp))))
    elif resp.failure is not None:
        parts.append(Text(failure_line(resp.failure), style="red"))
    return Group(*parts)


def info_json(info: wire.WorkflowExecutionInfo) -> dict[str, Any]:
    """A run summary as plain values, with its status named and its times as ISO-8601."""
    out = plain(info)
    out["status"] = status_name(info.status)
    for key in ("start_time", "close_time", "execution_time"):
        value = getattr(info, key)
        if value is not None:
            out[key] = when(value)
    return out


def runs_view(runs: list[wire.WorkflowExecutionInfo]) -> RenderableType:
    """One row per run (status, id, type, queue, start, close), or a note that none match."""
    if not runs:
        return Text("no workflows match", style="dim")
    table = Table(box=None, header_style="bold")
    for col in ("Status", "Workflow ID", "Type", "Task queue", "Start", "Close"):
        table.add_column(col)
    for info in runs:
        table.add_row(status_text(info.status), Text(info.workflow_id), Text(info.workflow_type),
                      Text(info.task_queue), when(info.start_time), when(info.close_time))
    return table


def count_json(count: int, groups: list[tuple[int, int]]) -> dict[str, Any]:
    """``{"count": N}``, plus ``groups`` (status, count) when the query grouped."""
    named = [{"status": status_name(status), "count": n} for status, n in groups]
    return {"count": count, **({"groups": named} if named else {})}


def count_view(count: int, groups: list[tuple[int, int]]) -> Group:
    """``Total: N``, then one coloured line per status group."""
    lines = [Text.assemble("Total: ", (str(count), "bold"))]
    lines += [status_text(status).append(f"  {n}", style="default") for status, n in groups]
    return Group(*lines)


def describe_json(resp: wire.DescribeWorkflowResponse) -> dict[str, Any]:
    out = plain(resp)
    out["info"] = info_json(resp.info)
    return out


def describe_view(resp: wire.DescribeWorkflowResponse) -> Group:
    """The summary grid, search attributes and memo, pending work, last task failure."""
    info = resp.info
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in [
        ("Workflow ID", info.workflow_id), ("Run ID", info.run_id),
        ("Type", info.workflow_type), ("Task queue", info.task_queue),
        ("Status", status_text(info.status)), ("Start", when(info.start_time)),
        ("Close", when(info.close_time)), ("History length", str(info.history_length)),
    ]:
        if value:
            summary.add_row(label, value if isinstance(value, Text) else Text(value))
    parts: list[RenderableType] = [summary]
    for title, values in (("Search attributes", info.search_attributes), ("Memo", info.memo)):
        if values:
            parts += [Text(), Text(title, style="bold")]
            parts += [Text(f"  {key} = {compact(decode_payload(raw))}")
                      for key, raw in sorted(values.items())]
    if resp.pending_activities:
        parts += [Text(), _pending_activities_table(resp.pending_activities)]
    if resp.pending_workflow_task is not None:
        wt = resp.pending_workflow_task
        parts += [Text(), Text.assemble(("Pending workflow task", "bold"),
                                        f"  {wt.state}, attempt {wt.attempt}")]
    if resp.last_workflow_task_failure is not None:
        parts += [Text(), Text.assemble(("Last workflow task failure", "bold red"), "  ",
                                        failure_line(resp.last_workflow_task_failure))]
    return Group(*parts)


def _pending_activities_table(pending: list[wire.PendingActivityInfo]) -> Table:
    table = Table(title="Pending activities", title_justify="left", box=None,
                  header_style="bold")
    for col in ("Activity ID", "Type", "State", "Attempt", "Last failure"):
        table.add_column(col)
    for a in pending:
        table.add_row(Text(a.activity_id), Text(a.activity_type), Text(a.state), str(a.attempt),
                      Text(failure_line(a.last_failure)) if a.last_failure else "")
    return table


def history_json(events: list[wire.HistoryEvent]) -> list[dict[str, Any]]:
    """Every event with all its attributes (payloads decoded)."""
    return [{"event_id": e.event_id, "event_time": when(e.event_time),
             "event_type": event_type_name(e.event_type),
             "attributes": plain(e.attributes)} for e in events]


def temporal_history_json(workflow_id: str, events: list[wire.HistoryEvent]) -> str:
    """The history as Temporal's JSON (``WorkflowHistory.to_json``)."""
    return WorkflowHistory(workflow_id, [HistoryEvent(e) for e in events]).to_json()


def history_view(workflow_id: str, run_id: str, events: list[wire.HistoryEvent]) -> Group:
    """A dim header line (which run, from when), then one coloured row per event."""
    table = Table(box=None, header_style="bold")
    table.add_column("ID", justify="right")
    table.add_column("Time", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Details", overflow="fold")
    for e in events:
        name = event_type_name(e.event_type)
        table.add_row(str(e.event_id), time_of_day(e.event_time),
                      Text(name, style=event_style(name)), Text(event_summary(e)))
    parts: list[RenderableType] = []
    if events:
        parts.append(Text(f"{workflow_id} run {run_id or 'current'}, from "
                          f"{when(events[0].event_time)}", style="dim"))
    return Group(*parts, table)


def done_json(workflow_id: str) -> dict[str, Any]:
    return {"ok": True, "workflow_id": workflow_id}


def done_line(what: str, workflow_id: str) -> Text:
    """``signal sent: ID`` and the like, after a command that returns nothing."""
    return Text.assemble((what, "green"), f": {workflow_id}")


# --- cluster commands -------------------------------------------------------------------

_STATE_STYLES = {"alive": "green", "suspect": "yellow", "dead": "red", "left": "dim"}

# Per node in ``cluster status``: its own answer, or why it gave none.
NodeViews = dict[str, "wire.ClusterStatusResponse | str"]


def contact_text(age_s: float | None, is_self: bool) -> str:
    """``0.4s ago``, ``2m 5s ago``; ``-`` for ourselves or a member never heard from."""
    if is_self or age_s is None:
        return "-"
    if age_s < 60:
        return f"{age_s:.1f}s ago"
    minutes, seconds = divmod(int(age_s), 60)
    return f"{minutes}m {seconds}s ago"


def shard_ranges(ids: list[int]) -> str:
    """``0-3, 7, 9-10``: shard ids, compact."""
    parts: list[str] = []
    start = prev = None
    for i in ids:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(parts) or "-"


def cluster_status_json(resp: wire.ClusterStatusResponse, views: NodeViews) -> dict[str, Any]:
    """Every field of the answer (``null`` where unknown), plus ``nodes``: each alive
    member's own shards and task queues, or ``{"error": ...}``."""
    return {**dataclasses.asdict(resp), "nodes": {
        name: {"error": v} if isinstance(v, str) else {
            "shards_led": v.shards_led, "shards_replicated": v.shards_replicated,
            "shards_under_replicated": v.shards_under_replicated,
            "task_queues": v.task_queues, "routing": v.routing}
        for name, v in sorted(views.items())}}


def members_table(resp: wire.ClusterStatusResponse) -> Table:
    """Members as a table; the answering node is marked with ``*``."""
    table = Table(title=Text(f"cluster {resp.cluster_name}: {resp.num_shards} shards, "
                             f"as seen by {resp.node} (health {resp.health_score})"),
                  title_justify="left")
    for column in ("Name", "State", "Incarnation", "Gossip address", "API address",
                   "Last contact"):
        table.add_column(column, no_wrap=column != "Name")
    for m in resp.members:
        table.add_row(
            Text(f"{m.name} *" if m.is_self else m.name),
            Text(m.state, style=_STATE_STYLES.get(m.state, "")),
            str(m.incarnation), Text(m.gossip_addr), Text(m.api_addr),
            contact_text(m.last_contact_age_s, m.is_self),
        )
    return table


def owns_table(views: NodeViews) -> Table:
    """Per node: the shards it leads and replicates, and the task queues it holds."""
    table = Table(title="what each node owns", title_justify="left")
    for column in ("Name", "Leads", "Replicates", "Below R", "Task queues"):
        table.add_column(column)
    for name, view in sorted(views.items()):
        if isinstance(view, str):
            table.add_row(Text(name), Text(view, style="red"), "", "", "")
            continue
        table.add_row(
            Text(name), f"{len(view.shards_led)}: {shard_ranges(view.shards_led)}",
            f"{len(view.shards_replicated)}: {shard_ranges(view.shards_replicated)}",
            Text(shard_ranges(view.shards_under_replicated),
                 style="yellow" if view.shards_under_replicated else ""),
            Text(", ".join(view.task_queues) or "-"))
    return table


def cluster_status_view(resp: wire.ClusterStatusResponse, views: NodeViews) -> Group:
    """Members, a count per state, what each node owns, then warnings (shards below their
    replication factor, an active partition drill)."""
    counts: dict[str, int] = {}
    for m in resp.members:
        counts[m.state] = counts.get(m.state, 0) + 1
    parts: list[RenderableType] = [
        members_table(resp), Text(", ".join(f"{n} {state}" for state, n in sorted(counts.items()))),
        owns_table(views)]
    under = sorted({s for v in views.values() if not isinstance(v, str)
                    for s in v.shards_under_replicated})
    if under:
        parts.append(Text(f"{len(under)} shard(s) below their replication factor: "
                          f"{shard_ranges(under)}", style="yellow"))
    if resp.blocked_addrs:
        parts.append(Text.assemble(
            (f"partition drill active: cut off from {', '.join(resp.blocked_addrs)} "
             "(gossip, replication, requests)", "yellow"),
            " (`shoal cluster partition-drill --clear` ends it)"))
    return Group(*parts)


def drill_line(address: str, block: list[str]) -> Text:
    """What ``partition-drill`` did on the node at ``address``."""
    return Text(f"partition drill on {address}: cut off from {', '.join(block)}"
                if block else f"partition drill on {address} cleared")
