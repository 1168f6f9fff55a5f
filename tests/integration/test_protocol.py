"""The WebSocket API seen raw: handshake rules, hostile frames, request cancellation."""

from __future__ import annotations

import uuid

import cbor2
import pytest
import trio
from trio_websocket import open_websocket_url

from shoal import wire
from shoal.client import Client

pytestmark = pytest.mark.timeout(60)


async def _ask(ws, req_id: int, op: str, body: object) -> wire.Response:
    await ws.send_message(cbor2.dumps({"id": req_id, "op": op, "body": body}))
    return wire.decode_response(await ws.get_message())


async def test_requests_before_handshake_are_refused(node) -> None:
    async with open_websocket_url(node.address) as ws:
        resp = await _ask(ws, 1, "list_workflows", {})
        assert resp.err is not None and resp.err.code == wire.Code.HANDSHAKE_REQUIRED


async def test_wrong_protocol_version_is_refused_with_a_reason(node) -> None:
    async with open_websocket_url(node.address) as ws:
        resp = await _ask(ws, 1, "handshake", {"protocol_version": 99})
        assert resp.err is not None and resp.err.code == wire.Code.UNSUPPORTED_VERSION
        assert "upgrade" in resp.err.message


async def test_garbage_frames_get_errors_and_the_connection_keeps_working(node) -> None:
    async with open_websocket_url(node.address) as ws:
        ok = await _ask(ws, 1, "handshake", {"protocol_version": wire.PROTOCOL_VERSION})
        assert ok.err is None
        await ws.send_message(b"\xff\x00garbage")
        bad = wire.decode_response(await ws.get_message())
        assert bad.err is not None and bad.err.code == wire.Code.MALFORMED
        unknown = await _ask(ws, 2, "no_such_op", {})
        assert unknown.err is not None and unknown.err.code == wire.Code.UNKNOWN_OP
        wrong = await _ask(ws, 3, "start_workflow", {"workflow_id": 5})
        assert wrong.err is not None and wrong.err.code == wire.Code.MALFORMED
        fine = await _ask(ws, 4, "list_workflows", {"page_size": 1})
        assert fine.err is None


async def test_oversize_payload_is_refused_and_nothing_is_written(client: Client) -> None:
    wf_id = f"big-{uuid.uuid4()}"
    with pytest.raises(Exception) as info:
        await client.start_workflow("Big", b"x" * (wire.PAYLOAD_BYTES_MAX + 10), id=wf_id, task_queue="q")
    assert getattr(info.value, "code", None) == wire.Code.PAYLOAD_TOO_LARGE
    with pytest.raises(Exception) as missing:
        await client.get_workflow_handle(wf_id).describe()
    assert getattr(missing.value, "code", None) == wire.Code.NOT_FOUND


async def test_abandoned_poll_does_not_take_the_next_task(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    conn = client.service
    with trio.move_on_after(0.3):
        await conn.call(wire.Op.POLL_WORKFLOW_TASK, wire.PollWorkflowTaskRequest(task_queue=tq, wait_s=30))
    await client.start_workflow("Anything", id=f"w-{uuid.uuid4()}", task_queue=tq)
    resp = await conn.call(wire.Op.POLL_WORKFLOW_TASK, wire.PollWorkflowTaskRequest(task_queue=tq, wait_s=5))
    assert resp.task is not None and resp.task.workflow_type == "Anything"


async def test_eager_activity_is_started_in_the_completion_and_not_dispatched(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    conn = client.service
    await client.start_workflow("Eager", id=f"e-{uuid.uuid4()}", task_queue=tq)
    wt = (await conn.call(wire.Op.POLL_WORKFLOW_TASK,
                          wire.PollWorkflowTaskRequest(task_queue=tq, wait_s=5))).task
    assert wt is not None
    cmd = dict(activity_type="act", task_queue=tq, start_to_close_timeout_s=5.0)
    resp = await conn.call(wire.Op.COMPLETE_WORKFLOW_TASK, wire.CompleteWorkflowTaskRequest(
        task_token=wt.task_token, commands=[
            wire.ScheduleActivityTaskCommand(activity_id="1", request_eager_execution=True, **cmd),
            wire.ScheduleActivityTaskCommand(activity_id="2", **cmd),
        ]))
    assert [t.activity_id for t in resp.activity_tasks] == ["1"]
    polled = await conn.call(wire.Op.POLL_ACTIVITY_TASK,
                             wire.PollActivityTaskRequest(task_queue=tq, wait_s=2))
    assert polled.task is not None and polled.task.activity_id == "2"
    nothing = await conn.call(wire.Op.POLL_ACTIVITY_TASK,
                              wire.PollActivityTaskRequest(task_queue=tq, wait_s=0.3))
    assert nothing.task is None
    await conn.call(wire.Op.COMPLETE_ACTIVITY_TASK, wire.CompleteActivityTaskRequest(
        task_token=resp.activity_tasks[0].task_token, result=[b"r"]))
