"""``cli/render.py``: what the client-side commands print, from wire values alone."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType

from helpers.cli_fake import T0, failure, info, payload
from shoal import wire
from shoal.cli import render

S = wire.WorkflowExecutionStatus
TRICKY = "a[/b] [bold]c[/bold] [red]"  # closing tag with no opening: rich markup would raise


def shown(renderable: RenderableType) -> str:
    con = Console(file=io.StringIO(), width=200, highlight=False, soft_wrap=True)
    con.print(renderable)
    return con.file.getvalue()  # type: ignore[attr-defined]


def test_started_line_shows_a_workflow_id_with_brackets_verbatim() -> None:
    assert shown(render.started_line(TRICKY, "r1")) == f"Started workflow {TRICKY} run r1\n"


def test_runs_view_shows_user_text_verbatim_and_says_when_nothing_matches() -> None:
    text = shown(render.runs_view([info(TRICKY, workflow_type="[/T]", task_queue="[q]")]))
    assert TRICKY in text and "[/T]" in text and "[q]" in text and "Running" in text
    assert shown(render.runs_view([])) == "no workflows match\n"


def test_describe_view_shows_bracketed_ids_failures_and_memo() -> None:
    resp = wire.DescribeWorkflowResponse(
        info=info(TRICKY, memo={"k": payload("[/m]")}),
        pending_activities=[wire.PendingActivityInfo(
            activity_id="[/act]", activity_type="Charge", state="STARTED", attempt=2,
            scheduled_time=T0, last_failure=failure("bad [/x] input"))],
        last_workflow_task_failure=failure("[/nondeterminism]"))
    text = shown(render.describe_view(resp))
    for want in (TRICKY, "[/act]", "bad [/x] input (BadInput)", 'k = "[/m]"',
                 "Last workflow task failure  [/nondeterminism] (BadInput)", 'Team = "blue"'):
        assert want in text, want


def test_history_view_shows_payloads_with_brackets() -> None:
    event = wire.HistoryEvent(
        event_id=1, event_time=T0, event_type=wire.EventType.WORKFLOW_EXECUTION_SIGNALED,
        attributes=wire.WorkflowExecutionSignaledAttributes(
            signal_name="greet", input=[payload("[/who]")]))
    text = shown(render.history_view(TRICKY, "", [event]))
    assert f"{TRICKY} run current, from" in text
    assert "WorkflowExecutionSignaled" in text and '"[/who]"' in text


def test_result_view_shows_the_result_or_the_failure_chain() -> None:
    done = wire.GetResultResponse(run_id="r2", status=S.COMPLETED, result=[payload(["[/x]"])])
    assert shown(render.result_view(done)) == 'Completed  run r2\n[\n  "[/x]"\n]\n'
    failed = wire.GetResultResponse(run_id="r3", status=S.FAILED,
                                    failure=failure("[/top]", failure("root")))
    assert shown(render.result_view(failed)) == (
        "Failed  run r3\n[/top] (BadInput) <- caused by: root (BadInput)\n")


def test_result_json_has_result_only_when_completed() -> None:
    failed = wire.GetResultResponse(run_id="r3", status=S.FAILED, failure=failure())
    out = render.result_json("w", failed)
    assert out["status"] == "Failed" and "result" not in out
    assert out["failure"]["message"] == "negative input"
    done = wire.GetResultResponse(run_id="r2", status=S.COMPLETED, result=[payload(1), payload(2)])
    assert render.result_json("w", done)["result"] == [1, 2]


def test_count_json_and_view_list_groups_by_status() -> None:
    groups = [(int(S.RUNNING), 2), (int(S.FAILED), 1)]
    assert render.count_json(3, groups) == {"count": 3, "groups": [
        {"status": "Running", "count": 2}, {"status": "Failed", "count": 1}]}
    assert render.count_json(0, []) == {"count": 0}
    assert shown(render.count_view(3, groups)) == "Total: 3\nRunning  2\nFailed  1\n"


def _member(name: str, **kw) -> wire.ClusterMember:
    return wire.ClusterMember(name=name, state=kw.pop("state", "alive"), incarnation=1,
                              gossip_addr=f"{name}:1", api_addr=f"ws://{name}:2", **kw)


def test_cluster_status_view_shows_bracketed_names_owns_and_warnings() -> None:
    resp = wire.ClusterStatusResponse(
        node="[/n1]", cluster_name="[/c]", num_shards=8,
        members=[_member("[/n1]", is_self=True), _member("n2", last_contact_age_s=0.5)],
        shards_led=[0, 1, 2, 5], shards_under_replicated=[3], task_queues=["[/q]"],
        blocked_addrs=["n3:1"])
    views: render.NodeViews = {"[/n1]": resp, "n2": "no answer (TooSlowError)"}
    text = shown(render.cluster_status_view(resp, views))
    for want in ("cluster [/c]: 8 shards, as seen by [/n1]", "[/n1] *", "0.5s ago",
                 "2 alive", "4: 0-2, 5", "[/q]", "no answer (TooSlowError)",
                 "1 shard(s) below their replication factor: 3",
                 "partition drill active: cut off from n3:1"):
        assert want in text, want
    nodes = render.cluster_status_json(resp, views)["nodes"]
    assert nodes["n2"] == {"error": "no answer (TooSlowError)"}
    assert nodes["[/n1]"]["shards_led"] == [0, 1, 2, 5]


def test_shard_ranges_are_compact() -> None:
    cases = [([], "-"), ([4], "4"), ([0, 1, 2, 3, 7, 9, 10], "0-3, 7, 9-10")]
    for ids, want in cases:
        assert render.shard_ranges(ids) == want
