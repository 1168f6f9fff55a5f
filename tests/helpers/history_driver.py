"""A driver for the history engine (``node/history``): it plays the shard shell (stores
what each transition produced, hands out tasks, checks the history after every step) so
tests read as scripted scenarios with plain ``now`` floats. Owned by the history engine."""

from __future__ import annotations

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.history.invariants import check_history
from shoal.node.history.transition import Transition
from shoal.node.history import records
from shoal.node.history.records import TimerKind, TransferKind

E = wire.EventType
NS = "default"


def start_request(**kw) -> wire.StartWorkflowRequest:
    args = dict(workflow_id="wf-1", workflow_type="Greeting", task_queue="q", request_id="req-1")
    args.update(kw)
    return wire.StartWorkflowRequest(**args)


def activity(activity_id: str = "a1", **kw) -> wire.ScheduleActivityTaskCommand:
    args = dict(activity_id=activity_id, activity_type="say_hello", task_queue="q", input=[b"x"],
                start_to_close_timeout_s=10.0)
    args.update(kw)
    return wire.ScheduleActivityTaskCommand(**args)


def complete(result: bytes = b"done") -> wire.CompleteWorkflowExecutionCommand:
    return wire.CompleteWorkflowExecutionCommand(result=[result])


def app_failure(message: str = "boom", **kw) -> wire.Failure:
    return wire.Failure(message=message, **kw)


def token_of(task) -> wire.TaskToken:
    return wire.loads(wire.TaskToken, task.task_token)


class Run:
    """One run driven through the engine; keeps its committed history and outbox."""

    def __init__(self, engine: HistoryEngine, now: float = 100.0, run_id: str = "run-1", **kw) -> None:
        self.engine = engine
        self.now = now
        res = engine.start_workflow(start_request(**kw), namespace=NS, run_id=run_id, current=None, now=now)
        assert res.state is not None and res.transition is not None
        self.state: records.ExecutionState = res.state
        self.history: list[wire.HistoryEvent] = []
        self.transfers: list[records.TransferTask] = []
        self.timers: list[records.TimerTask] = []
        self.apply(res.transition)

    @classmethod
    def adopt(cls, engine: HistoryEngine, state: records.ExecutionState, first: Transition,
              now: float = 100.0) -> Run:
        """Drive a run the engine built elsewhere (a child, a continued run)."""
        run = cls.__new__(cls)
        run.engine, run.now, run.state = engine, now, state
        run.history, run.transfers, run.timers = [], [], []
        run.apply(first)
        return run

    # --- the shell's part ------------------------------------------------------------

    def apply(self, tr: Transition) -> Transition:
        """Store a transition as the shell would, checking the engine's promises."""
        if tr.events:
            assert tr.events[0].event_id == len(self.history) + 1, "events continue history densely"
        self.history.extend(tr.events)
        assert self.state.next_event_id == len(self.history) + 1
        self.transfers.extend(tr.transfer_tasks)
        self.timers.extend(tr.timer_tasks)
        # The state must survive the codec the store uses.
        assert wire.loads(records.ExecutionState, wire.dumps(self.state)) == self.state
        assert check_history(self.history) == []
        return tr

    def types(self, start: int = 1) -> list[str]:
        return [e.event_type.name for e in self.history[start - 1:]]

    def last(self, event_type: wire.EventType) -> wire.HistoryEvent:
        return [e for e in self.history if e.event_type == event_type][-1]

    # --- workflow tasks --------------------------------------------------------------

    def wt_dispatch(self) -> records.TransferTask:
        tasks = [t for t in self.transfers if t.kind == TransferKind.WORKFLOW_TASK]
        assert tasks, "no workflow task dispatched"
        return tasks[-1]

    def poll_wt(self, *, at: float | None = None, request_id: str = "poll-wt") -> wire.WorkflowTask:
        t = self.wt_dispatch()
        tr = self.engine.record_workflow_task_started(
            self.state, scheduled_event_id=t.scheduled_event_id, attempt=t.attempt,
            identity="worker-1", request_id=request_id, now=self.at(at),
        )
        self.apply(tr)
        task = tr.response
        assert isinstance(task, wire.WorkflowTask)
        return task

    def complete_wt(self, task: wire.WorkflowTask, commands: list, *, at: float | None = None,
                    new_run_id: str = "run-2") -> Transition:
        return self.apply(self.engine.complete_workflow_task(
            self.state, token=token_of(task), commands=commands, identity="worker-1", now=self.at(at),
            new_run_id=new_run_id))

    def signal(self, name: str = "sig", payload: bytes = b"s", *, request_id: str = "",
               at: float | None = None) -> Transition:
        return self.apply(self.engine.signal(
            self.state, signal_name=name, input=[payload], identity="client", request_id=request_id,
            now=self.at(at)))

    def request_cancel(self, *, at: float | None = None) -> Transition:
        return self.apply(self.engine.request_cancel(
            self.state, reason="because", identity="client", request_id="cancel-1", now=self.at(at)))

    def fail_wt(self, task: wire.WorkflowTask, *, at: float | None = None,
                cause=wire.WorkflowTaskFailedCause.NON_DETERMINISTIC_ERROR) -> Transition:
        return self.apply(self.engine.fail_workflow_task(
            self.state, token=token_of(task), cause=cause, failure=app_failure("nondeterminism"),
            identity="worker-1", now=self.at(at)))

    def run_wt(self, commands: list, *, at: float | None = None) -> Transition:
        return self.complete_wt(self.poll_wt(at=at), commands, at=at)

    # --- activities ------------------------------------------------------------------

    def act_dispatch(self, activity_id: str = "a1") -> records.TransferTask:
        sid = self.scheduled_id(activity_id)
        tasks = [t for t in self.transfers if t.kind == TransferKind.ACTIVITY_TASK and t.scheduled_event_id == sid]
        assert tasks, f"activity {activity_id} not dispatched"
        return tasks[-1]

    def scheduled_id(self, activity_id: str) -> int:
        for e in self.history:
            if e.event_type == E.ACTIVITY_TASK_SCHEDULED and e.attributes.activity_id == activity_id:
                return e.event_id
        raise AssertionError(f"activity {activity_id} not scheduled")

    def poll_activity(self, activity_id: str = "a1", *, at: float | None = None,
                      request_id: str = "poll-act") -> wire.ActivityTask:
        t = self.act_dispatch(activity_id)
        tr = self.engine.record_activity_task_started(
            self.state, scheduled_event_id=t.scheduled_event_id, attempt=t.attempt,
            identity="worker-1", request_id=request_id, now=self.at(at),
        )
        self.apply(tr)
        assert isinstance(tr.response, wire.ActivityTask)
        return tr.response

    def complete_activity(self, task: wire.ActivityTask, result: bytes = b"hi", *, at: float | None = None) -> Transition:
        return self.apply(self.engine.complete_activity_task(
            self.state, token=token_of(task), result=[result], identity="worker-1", now=self.at(at)))

    def fail_activity(self, task: wire.ActivityTask, failure: wire.Failure | None = None, *,
                      at: float | None = None) -> Transition:
        return self.apply(self.engine.fail_activity_task(
            self.state, token=token_of(task), failure=failure or app_failure(),
            last_heartbeat_details=None, identity="worker-1", now=self.at(at)))

    # --- timers ----------------------------------------------------------------------

    def timer(self, kind: TimerKind, **match) -> records.TimerTask:
        found = [t for t in self.timers if t.kind == kind
                 and all(getattr(t, k) == v for k, v in match.items())]
        assert found, f"no {kind.name} timer matching {match}"
        return found[-1]

    def fire(self, task: records.TimerTask, *, at: float | None = None) -> Transition:
        return self.apply(self.engine.on_timer(self.state, task, task.fire_time if at is None else at))

    def at(self, at: float | None) -> float:
        if at is not None:
            self.now = at
        return self.now
