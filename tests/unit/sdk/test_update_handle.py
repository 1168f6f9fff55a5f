"""WorkflowUpdateHandle.result: a known outcome costs no call, a poll that answers "still
running" is repeated, and an ask with ``rpc_timeout`` that finds no outcome raises."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shoal import wire
from shoal.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from shoal.sdk import converter


class _Service:
    """Answers POLL_WORKFLOW_UPDATE from a script, recording each request."""

    def __init__(self, answers: list[wire.PollWorkflowUpdateResponse]) -> None:
        self.answers, self.asked = answers, []

    async def call(self, op: wire.Op, body: Any, **_: Any) -> Any:
        assert op == wire.Op.POLL_WORKFLOW_UPDATE
        self.asked.append(body)
        return self.answers.pop(0)


class _Client:
    def __init__(self, service: _Service) -> None:
        self.service, self.data_converter, self.identity = service, converter.default(), "t"


def _ok(value: Any) -> wire.UpdateOutcome:
    return wire.UpdateOutcome(result=converter.default().to_payloads([value]))


async def test_a_known_outcome_is_returned_without_a_call() -> None:
    service = _Service([])
    handle = WorkflowUpdateHandle(_Client(service), "u", "wf", known_outcome=_ok(7))
    assert await handle.result() == 7
    assert service.asked == []


async def test_result_asks_again_until_the_update_completes() -> None:
    service = _Service([wire.PollWorkflowUpdateResponse(run_id="r"),
                        wire.PollWorkflowUpdateResponse(run_id="r"),
                        wire.PollWorkflowUpdateResponse(run_id="r", outcome=_ok("done"))])
    handle = WorkflowUpdateHandle(_Client(service), "u", "wf", workflow_run_id="r", result_type=str)
    assert await handle.result() == "done"
    assert [(b.update_id, b.execution.run_id) for b in service.asked] == [("u", "r")] * 3
    assert await handle.result() == "done" and len(service.asked) == 3


async def test_an_ask_with_rpc_timeout_that_finds_no_outcome_raises() -> None:
    service = _Service([wire.PollWorkflowUpdateResponse(run_id="r")])
    handle = WorkflowUpdateHandle(_Client(service), "u", "wf")
    with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
        await handle.result(rpc_timeout=timedelta(seconds=0.5))
    assert service.asked[0].wait_s == 0.5


async def test_a_failed_outcome_raises_update_failed() -> None:
    failure = wire.Failure(message="nope")
    handle = WorkflowUpdateHandle(_Client(_Service([])), "u", "wf",
                                  known_outcome=wire.UpdateOutcome(failure=failure))
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.result()
    assert "nope" in str(exc.value.cause)
