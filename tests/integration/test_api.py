"""Client API against a real node: idempotent start, paged history, list filters, frame limit,
and a clean stop on SIGTERM."""

from __future__ import annotations

import uuid

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from helpers.node_proc import NodeProcess
from shoal import wire
from shoal.client import Client, WorkflowExecutionStatus

pytestmark = pytest.mark.timeout(60)


async def test_retried_start_with_same_request_id_returns_the_same_run(client: Client) -> None:
    wf_id = f"idem-{uuid.uuid4()}"
    h1 = await client.start_workflow("T", id=wf_id, task_queue="q", request_id="req-1")
    h2 = await client.start_workflow("T", id=wf_id, task_queue="q", request_id="req-1")
    assert h1.result_run_id == h2.result_run_id
    events = (await client.get_workflow_handle(wf_id).fetch_history()).events
    assert sum(e.raw.event_type == wire.EventType.WORKFLOW_EXECUTION_STARTED for e in events) == 1


async def test_history_pages_add_up_to_the_whole_history(client: Client) -> None:
    from shoal.exceptions import ApplicationError  # noqa: F401 - the SDK imports cleanly

    wf_id = f"pages-{uuid.uuid4()}"
    handle = await client.start_workflow("T", id=wf_id, task_queue=f"q-{uuid.uuid4()}")
    conn = client.service
    # Make some history: poll and fail the workflow task a few times is not allowed to
    # grow history (transient), so complete it with timers instead.
    for i in range(3):
        wt = (await conn.call(wire.Op.POLL_WORKFLOW_TASK, wire.PollWorkflowTaskRequest(
            task_queue=(await handle.describe()).task_queue, wait_s=5))).task
        assert wt is not None
        await conn.call(wire.Op.COMPLETE_WORKFLOW_TASK, wire.CompleteWorkflowTaskRequest(
            task_token=wt.task_token,
            commands=[wire.StartTimerCommand(timer_id=str(i), start_to_fire_timeout_s=0.01)]))
        await trio.sleep(0.05)
    whole = [e.event_id async for e in handle.fetch_history_events()]
    paged = [e.event_id async for e in handle.fetch_history_events(page_size=2)]
    assert paged == whole == list(range(1, len(whole) + 1))
    assert len(whole) >= 10


async def test_list_filters_by_type_status_and_queue(client: Client) -> None:
    tq = f"list-{uuid.uuid4()}"
    wtype = f"Type{uuid.uuid4().hex[:6]}"
    ids = {f"l-{i}-{uuid.uuid4()}" for i in range(3)}
    for wf_id in ids:
        await client.start_workflow(wtype, id=wf_id, task_queue=tq)
    by_type = {w.id async for w in client.list_workflows(workflow_type=wtype)}
    by_queue = {w.id async for w in client.list_workflows(task_queue=tq, page_size=1)}
    running = {w.id async for w in client.list_workflows(
        workflow_type=wtype, status=WorkflowExecutionStatus.RUNNING)}
    done = {w.id async for w in client.list_workflows(
        workflow_type=wtype, status=WorkflowExecutionStatus.COMPLETED)}
    assert by_type == by_queue == running == ids
    assert done == set()


async def test_oversize_frame_closes_the_connection_and_the_node_keeps_serving(node) -> None:
    async with open_websocket_url(node.address, max_message_size=32 * 1024 * 1024) as ws:
        await ws.send_message(b"\x00" * (wire.FRAME_BYTES_MAX + 1024))
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
    c = await Client.connect(node.address)
    assert [w async for w in c.list_workflows(workflow_type="nothing-like-this")] == []


def test_sigterm_stops_the_node_cleanly(tmp_path) -> None:
    proc = NodeProcess(tmp_path / "data")
    proc.start()
    assert proc.terminate() == 0
    log = "".join(proc.log_lines)
    assert "stopping on signal=SIGTERM" in log and "node stopped" in log
