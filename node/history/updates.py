"""Workflow updates as history sees them: accepted, completed, or rejected without a trace.

Owns: the AcceptUpdate / RejectUpdate / CompleteUpdate commands (validation and the
WorkflowExecutionUpdateAccepted / Completed events), the run's record of accepted and
completed updates (a retried request gets the same answer), and scheduling the speculative
workflow task that carries updates to a worker when none is pending. As Temporal: a
rejected update records nothing, and a speculative task that only rejected updates is
dropped. Must not: hold the requests that wait for a worker (soft state on the node, see
``node/shard/updates.py``) or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal import wire
from shoal.node.history import workflow_task
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import Txn
from shoal.node.history import records

UPDATE_COMMANDS = (wire.AcceptUpdateCommand, wire.RejectUpdateCommand, wire.CompleteUpdateCommand)


@dataclass(slots=True)
class UpdateCheck:
    """Updates the commands seen so far accept, reject and complete."""

    accepted: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)


def check(state: records.ExecutionState, seen: UpdateCheck, cmd: wire.Command, cfg: HistoryConfig) -> str | None:
    """Why an update command is invalid given the state and earlier commands, or None."""
    if isinstance(cmd, wire.AcceptUpdateCommand):
        uid = cmd.request.update_id
        if not uid or len(uid) > wire.ID_CHARS_MAX:
            return f"update_id must be 1 to {wire.ID_CHARS_MAX} characters"
        if uid in state.accepted_updates or uid in state.completed_updates or uid in seen.accepted | seen.settled:
            return f"update {uid!r} is already accepted"
        if wire.payloads_size(cmd.request.input) > cfg.payload_bytes_max:
            return f"update {uid!r} input is over the {cfg.payload_bytes_max}-byte limit"
        seen.accepted.add(uid)
        return None
    uid = cmd.update_id  # type: ignore[union-attr]
    if uid in seen.settled:
        return f"update {uid!r} is settled twice in one task"
    if isinstance(cmd, wire.RejectUpdateCommand):
        if uid in state.accepted_updates or uid in seen.accepted:
            return f"update {uid!r} was accepted; complete it instead of rejecting it"
    else:
        assert isinstance(cmd, wire.CompleteUpdateCommand)
        if uid not in state.accepted_updates and uid not in seen.accepted:
            return f"update {uid!r} is not accepted, so it cannot complete"
        size = wire.payloads_size(cmd.outcome.result) + (len(wire.dumps(cmd.outcome.failure)) if cmd.outcome.failure else 0)
        if size > cfg.payload_bytes_max:
            return f"update {uid!r} outcome is over the {cfg.payload_bytes_max}-byte limit"
    seen.settled.add(uid)
    return None


def only_rejections(commands: list[wire.Command]) -> bool:
    """Whether a task's commands do nothing but reject updates (or nothing at all)."""
    return all(isinstance(c, wire.RejectUpdateCommand) for c in commands)


def apply(txn: Txn, cmd: wire.Command) -> None:
    """Record one validated update command."""
    st, tr = txn.state, txn.tr
    if isinstance(cmd, wire.AcceptUpdateCommand):
        eid = txn.append(wire.WorkflowExecutionUpdateAcceptedAttributes(accepted_request=cmd.request))
        st.accepted_updates[cmd.request.update_id] = eid
        tr.accepted_updates.append(cmd.request.update_id)
    elif isinstance(cmd, wire.RejectUpdateCommand):
        tr.update_outcomes[cmd.update_id] = wire.UpdateOutcome(failure=cmd.failure)
    else:
        assert isinstance(cmd, wire.CompleteUpdateCommand)
        accepted_id = st.accepted_updates.pop(cmd.update_id)
        txn.append(wire.WorkflowExecutionUpdateCompletedAttributes(
            update_id=cmd.update_id, accepted_event_id=accepted_id, outcome=cmd.outcome))
        st.completed_updates[cmd.update_id] = cmd.outcome
        for old in list(st.completed_updates)[: -records.UPDATES_COMPLETED_MAX]:
            del st.completed_updates[old]
        tr.update_outcomes[cmd.update_id] = cmd.outcome


def schedule_task(txn: Txn) -> None:
    """Make sure a workflow task will carry waiting updates: a speculative one if none is
    pending (a pending one carries them when it starts)."""
    st = txn.state
    if st.status == wire.WorkflowExecutionStatus.RUNNING and st.workflow_task is None:
        workflow_task.schedule(txn, attempt=1, speculative=True)
