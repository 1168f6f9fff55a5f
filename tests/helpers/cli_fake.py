"""A node stand-in for CLI unit tests: canned wire answers behind a real ``Client``.

``fake_node(monkeypatch, answers)`` makes ``Client.connect`` return a real ``Client`` over a
``FakeService`` that answers each ``wire.Op`` from ``answers`` (a value, a list of values
taken in turn, or an exception to raise) and records every request, so a test runs a real
``shoal workflow ...`` command in-process and asserts what it sent and what it printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cbor2

from shoal import wire
from shoal.sdk.client import Client

T0 = 1_700_000_000.0  # a fixed instant for canned times


@dataclass
class FakeService:
    answers: dict[wire.Op, Any]
    namespace: str = wire.DEFAULT_NAMESPACE
    identity: str = "test"
    sent: list[tuple[wire.Op, Any]] = field(default_factory=list)
    closed: bool = False

    async def call(self, op: wire.Op, body: Any, *, retry_for_s: float = 60.0) -> Any:
        self.sent.append((op, body))
        answer = self.answers[op]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def close(self) -> None:
        self.closed = True


def fake_node(monkeypatch: Any, answers: dict[wire.Op, Any]) -> list[FakeService]:
    """Route every ``Client.connect`` to a fake; returns the fakes made, in order."""
    made: list[FakeService] = []

    async def connect(cls: type[Client], target_host: Any, *, namespace: str = wire.DEFAULT_NAMESPACE,
                      identity: str | None = None, data_converter: Any = None) -> Client:
        service = FakeService(answers, namespace=namespace, identity=identity or "test")
        made.append(service)
        return cls(service, data_converter=data_converter)  # type: ignore[arg-type]

    monkeypatch.setattr(Client, "connect", classmethod(connect))
    return made


def payload(value: Any) -> bytes:
    return cbor2.dumps(value)


def info(workflow_id: str = "order-1", **overrides: Any) -> wire.WorkflowExecutionInfo:
    fields: dict[str, Any] = dict(
        workflow_id=workflow_id, run_id="run-1", workflow_type="Order", task_queue="q",
        status=wire.WorkflowExecutionStatus.RUNNING, start_time=T0, history_length=3,
        memo={"owner": payload({"n": 1})}, search_attributes={"Team": payload("blue")})
    fields.update(overrides)
    return wire.WorkflowExecutionInfo(**fields)


def failure(message: str = "negative input", cause: wire.Failure | None = None) -> wire.Failure:
    return wire.Failure(message=message, type="BadInput", cause=cause)
