"""Child workflows and signals/cancels between workflows: Temporal-style programs against a
real node (imports, trio and the address changed)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from shoal import wire, workflow
from shoal.client import Client, WorkflowFailureError
from shoal.exceptions import (ApplicationError, CancelledError, ChildWorkflowError,
                              TerminatedError, WorkflowAlreadyStartedError)
from shoal.node.history.invariants import check_history
from shoal.worker import Worker

from helpers.node_proc import wait_until

pytestmark = pytest.mark.timeout(60)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def _history(client: Client, wf_id: str, run_id: str | None = None) -> list[wire.HistoryEvent]:
    handle = client.get_workflow_handle(wf_id, run_id=run_id)
    return [e.raw for e in (await handle.fetch_history()).events]


@workflow.defn
class ComposeGreetingChild:
    @workflow.run
    async def run(self, greeting: str, name: str) -> str:
        if name == "fail":
            raise ApplicationError("child refuses", type="Refusal", non_retryable=True)
        return f"{greeting}, {name}!"


@workflow.defn
class GreetingParent:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_child_workflow(
            ComposeGreetingChild.run, args=["Hello", name], id=f"{workflow.info().workflow_id}-child")


async def test_child_workflow_result_reaches_the_parent(client: Client) -> None:
    tq, wf_id = _id("tq"), _id("parent")
    async with Worker(client, task_queue=tq, workflows=[GreetingParent, ComposeGreetingChild]):
        assert await client.execute_workflow(GreetingParent.run, "World", id=wf_id, task_queue=tq) == "Hello, World!"
    parent = await _history(client, wf_id)
    child = await _history(client, f"{wf_id}-child")
    assert check_history(parent) == [] and check_history(child) == []
    types = [e.event_type for e in parent]
    for et in (wire.EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED,
               wire.EventType.CHILD_WORKFLOW_EXECUTION_STARTED,
               wire.EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED):
        assert et in types
    started = child[0].attributes
    assert started.parent_workflow_id == wf_id and started.parent_initiated_event_id == types.index(
        wire.EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED) + 1


@workflow.defn
class FailingChildParent:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_child_workflow(ComposeGreetingChild.run, args=["Hi", "fail"],
                                                  id=f"{workflow.info().workflow_id}-child")
        except ChildWorkflowError as err:
            assert isinstance(err.cause, ApplicationError)
            return f"child failed: {err.cause.message} ({err.cause.type})"
        return "no error"


async def test_child_failure_arrives_as_child_workflow_error(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[FailingChildParent, ComposeGreetingChild]):
        result = await client.execute_workflow(FailingChildParent.run, id=_id("fparent"), task_queue=tq)
    assert result == "child failed: child refuses (Refusal)"


@workflow.defn
class WaitingChild:
    def __init__(self) -> None:
        self.messages: list[str] = []

    @workflow.run
    async def run(self, parent_id: str) -> list[str]:
        try:
            await workflow.wait_condition(lambda: "stop" in self.messages)
        except asyncio.CancelledError:
            raise
        # Tell the parent we are done (signal to an external workflow).
        await workflow.get_external_workflow_handle(parent_id).signal("child_done", "bye")
        return self.messages

    @workflow.signal
    def message(self, text: str) -> None:
        self.messages.append(text)


@workflow.defn
class SignallingParent:
    def __init__(self) -> None:
        self.child_said: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        me = workflow.info().workflow_id
        handle = await workflow.start_child_workflow(WaitingChild.run, me, id=f"{me}-child")
        await handle.signal(WaitingChild.message, "hello")
        await handle.signal(WaitingChild.message, "stop")
        messages = await handle
        await workflow.wait_condition(lambda: bool(self.child_said))
        return messages + self.child_said

    @workflow.signal
    def child_done(self, text: str) -> None:
        self.child_said.append(text)


async def test_parent_and_child_signal_each_other(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[SignallingParent, WaitingChild]):
        assert await client.execute_workflow(SignallingParent.run, id=_id("sp"), task_queue=tq) == [
            "hello", "stop", "bye"]


@workflow.defn
class CancellingParent:
    @workflow.run
    async def run(self) -> str:
        me = workflow.info().workflow_id
        handle = await workflow.start_child_workflow(WaitingChild.run, me, id=f"{me}-child")
        await workflow.sleep(0.1)
        handle.cancel()
        try:
            await handle
        except ChildWorkflowError as err:
            return f"child ended: {type(err.cause).__name__}"
        return "child completed"


async def test_cancelling_a_child_waits_for_it_to_cancel(client: Client) -> None:
    tq, wf_id = _id("tq"), _id("cp")
    async with Worker(client, task_queue=tq, workflows=[CancellingParent, WaitingChild]):
        assert await client.execute_workflow(CancellingParent.run, id=wf_id, task_queue=tq) == "child ended: CancelledError"
    child = client.get_workflow_handle(f"{wf_id}-child")
    assert (await child.describe()).status == wire.WorkflowExecutionStatus.CANCELED


@workflow.defn
class PolicyParent:
    @workflow.run
    async def run(self, policy: int) -> str:
        me = workflow.info().workflow_id
        await workflow.start_child_workflow(WaitingChild.run, me, id=f"{me}-child",
                                            parent_close_policy=workflow.ParentClosePolicy(policy))
        return "parent done"


@pytest.mark.parametrize("policy,expected", [
    (workflow.ParentClosePolicy.TERMINATE, wire.WorkflowExecutionStatus.TERMINATED),
    (workflow.ParentClosePolicy.REQUEST_CANCEL, wire.WorkflowExecutionStatus.CANCELED),
    (workflow.ParentClosePolicy.ABANDON, wire.WorkflowExecutionStatus.RUNNING),
])
async def test_parent_close_policy_applies_to_a_running_child(client: Client, policy, expected) -> None:
    tq, wf_id = _id("tq"), _id("pp")
    async with Worker(client, task_queue=tq, workflows=[PolicyParent, WaitingChild]):
        assert await client.execute_workflow(PolicyParent.run, int(policy), id=wf_id, task_queue=tq) == "parent done"
        child = client.get_workflow_handle(f"{wf_id}-child")
        if expected == wire.WorkflowExecutionStatus.RUNNING:
            await wait_until(lambda: _wt_done(client, f"{wf_id}-child"), timeout_s=10)
            assert (await child.describe()).status == expected
            await child.terminate(reason="test cleanup")
        else:
            await wait_until(lambda: _status_is(child, expected), timeout_s=10)


async def _status_is(handle, status) -> bool:
    return (await handle.describe()).status == status


async def _wt_done(client: Client, wf_id: str) -> bool:
    return wire.EventType.WORKFLOW_TASK_COMPLETED in [e.event_type for e in await _history(client, wf_id)]


@workflow.defn
class DuplicateChildParent:
    @workflow.run
    async def run(self, child_id: str) -> str:
        try:
            await workflow.start_child_workflow(WaitingChild.run, "x", id=child_id)
        except WorkflowAlreadyStartedError:
            return "already started"
        return "started"


async def test_starting_a_child_whose_id_is_running_fails_cleanly(client: Client) -> None:
    tq, child_id = _id("tq"), _id("taken")
    async with Worker(client, task_queue=tq, workflows=[DuplicateChildParent, WaitingChild]):
        taken = await client.start_workflow(WaitingChild.run, "nobody", id=child_id, task_queue=tq)
        assert await client.execute_workflow(DuplicateChildParent.run, child_id, id=_id("dup"), task_queue=tq) == "already started"
        await taken.terminate()
