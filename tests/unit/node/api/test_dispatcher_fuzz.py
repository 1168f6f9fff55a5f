"""The dispatcher never lets a hostile request crash the node or half-write state."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.inproc import inproc_node
from shoal import wire
from shoal.node.api.server import Dispatcher, NodeIdentity

plain = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True) | st.text(max_size=30) | st.binary(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=6),
    max_leaves=25,
)
op_names = st.sampled_from([o.value for o in wire.Op]) | st.text(max_size=20)


def _field_names() -> list[str]:
    names: set[str] = set()
    for req_type, _ in wire.OP_TYPES.values():
        names.update(req_type.__dataclass_fields__)
    return sorted(names)


# Bodies that use real field names, so decoding gets past the first check more often.
shaped_bodies = st.dictionaries(st.sampled_from(_field_names()), plain, max_size=8)


@pytest.fixture
async def dispatcher(tmp_path):
    async with inproc_node(tmp_path / "data") as node:
        assert node.service is not None
        yield Dispatcher(node.service, NodeIdentity("n1", "shoal", 8))


# Hypothesis runs each example in its own trio run, so each example gets its own node.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=op_names, body=plain | shaped_bodies)
async def test_any_request_gets_an_answer_or_a_named_error(tmp_path, op, body) -> None:
    if op in (wire.Op.POLL_WORKFLOW_TASK, wire.Op.POLL_ACTIVITY_TASK, wire.Op.GET_RESULT) and isinstance(body, dict):
        body = {**body, "wait_s": 0.0}  # don't park long polls
    async with inproc_node(tmp_path / uuid.uuid4().hex, num_shards=2) as node:
        dispatcher = Dispatcher(node.service, NodeIdentity("n1", "shoal", 2))
        try:
            await dispatcher.dispatch("default", op, body)
        except wire.ShoalError as exc:
            assert isinstance(exc.code, wire.Code)


async def test_node_still_serves_after_garbage(dispatcher) -> None:
    for body in [None, 5, "x", {"workflow_id": 1}, {"task_token": b"\xff"}]:
        for op in wire.Op:
            all_defaults = (wire.Op.LIST_WORKFLOWS, wire.Op.COUNT_WORKFLOWS)
            if op == wire.Op.HANDSHAKE or (op in all_defaults and isinstance(body, dict)):
                continue  # unknown fields are ignored, so a list or count with them is valid
            with pytest.raises(wire.ShoalError):
                await dispatcher.dispatch("default", op, body)
    wf_id = str(uuid.uuid4())
    resp = await dispatcher.dispatch("default", wire.Op.START_WORKFLOW, wire.to_plain(
        wire.StartWorkflowRequest(workflow_id=wf_id, workflow_type="T", task_queue="q",
                                  request_id="r1")))
    assert resp.run_id
    desc = await dispatcher.dispatch("default", wire.Op.DESCRIBE_WORKFLOW, {"execution": {"workflow_id": wf_id}})
    assert desc.info.status == wire.WorkflowExecutionStatus.RUNNING
