"""ChildWorkflows on its own: it needs only a RuntimeCore, not a whole WorkflowRuntime."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from shoal import wire
from shoal.sdk._children import ChildWorkflows
from shoal.sdk._commands import ProducedCommand
from shoal.sdk._loop import WorkflowLoop
from shoal.sdk._workflow_types import HistoryMismatch
from shoal.sdk.converter import DataConverter

ET = wire.EventType
PEER = wire.WorkflowExecution(workflow_id="peer")


class FakeCore:
    """The RuntimeCore members ChildWorkflows uses, recording what it asks for."""

    def __init__(self) -> None:
        self.converter = DataConverter()
        self.loop = WorkflowLoop(self)  # type: ignore[arg-type]  # no timers in these tests
        self.namespace, self.workflow_id = "default", "parent"
        self.replaying = False
        self.commands: list[ProducedCommand] = []
        self.task_failure: Optional[BaseException] = None
        self.workflow_object: Any = None
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_command(self, command: wire.Command, seq: int = 0) -> None:
        self.commands.append(ProducedCommand(command, seq))

    def drop_unsent(self, seq: int, kind: type) -> bool:
        raise AssertionError("not used here")

    def settle_failure(self, exc: Exception) -> None:
        raise AssertionError("not used here")


def _event(event_id: int, event_type: ET, attributes: Any) -> wire.HistoryEvent:
    return wire.HistoryEvent(event_id=event_id, event_time=0.0, event_type=event_type,
                             attributes=attributes)


def test_external_signal_takes_the_next_seq_and_resolves_when_history_records_delivery() -> None:
    core = FakeCore()
    children = ChildWorkflows(core)
    command = wire.SignalExternalWorkflowExecutionCommand(workflow_id="peer", signal_name="go")
    delivered = children.external_command(command, "signal workflow 'peer'")
    assert core.commands == [ProducedCommand(command, 1)]
    children.on_recorded(1, _event(5, ET.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
                                   wire.SignalExternalWorkflowExecutionInitiatedAttributes(
                                       workflow_task_completed_event_id=4, namespace="default",
                                       workflow_execution=PEER, signal_name="go")))
    assert children.apply(_event(7, ET.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
                                 wire.ExternalWorkflowExecutionSignaledAttributes(
                                     initiated_event_id=5, namespace="default",
                                     workflow_execution=PEER)))
    assert delivered.done() and delivered.result() is None


def test_events_that_are_not_about_children_or_externals_are_left_to_the_runtime() -> None:
    children = ChildWorkflows(FakeCore())
    fired = _event(3, ET.TIMER_FIRED, wire.TimerFiredAttributes(timer_id="1", started_event_id=2))
    assert children.apply(fired) is False


def test_a_child_event_for_a_child_never_started_is_a_history_mismatch() -> None:
    children = ChildWorkflows(FakeCore())
    started = _event(9, ET.CHILD_WORKFLOW_EXECUTION_STARTED,
                     wire.ChildWorkflowExecutionStartedAttributes(
                         namespace="default", initiated_event_id=8,
                         workflow_execution=PEER, workflow_type="Peer"))
    with pytest.raises(HistoryMismatch, match="never started"):
        children.apply(started)
