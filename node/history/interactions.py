"""What clients do to a running workflow, and the commands a workflow closes itself with.

Owns: signals (recorded once per request id), cancel requests, and the commands
CancelWorkflowExecution, RecordMarker and ContinueAsNewWorkflowExecution: their validation
and the events, state and new run they produce, as Temporal's history service does
(``signalWorkflowExecution``, ``requestCancelWorkflowExecution``,
``handleCommandContinueAsNewWorkflow``). Must not: do I/O, make ids, or read a clock (the
caller passes ``now`` and the new run's id).
"""

from __future__ import annotations

from shoal import wire
from shoal.node.history import start, workflow_task
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import Txn
from shoal.node.history import records

MARKER_NAME_CHARS_MAX = 1000


# --- signals and cancel requests ---------------------------------------------------------


def signal(
    txn: Txn, *, signal_name: str, input: wire.Payloads, identity: str, request_id: str
) -> None:
    """Record WorkflowExecutionSignaled (buffered if a workflow task is running).

    A retried request (same non-empty ``request_id``) records nothing the second time.
    """
    st = txn.state
    if request_id:
        if request_id in st.signal_request_ids:
            return
        st.signal_request_ids.append(request_id)
        del st.signal_request_ids[: -records.SIGNAL_REQUEST_IDS_MAX]
    workflow_task.add_workflow_event(
        txn,
        wire.WorkflowExecutionSignaledAttributes(
            signal_name=signal_name, input=list(input), identity=identity
        )
    )


def request_cancel(
    txn: Txn, *, reason: str, identity: str, request_id: str, external_workflow_id: str | None = None
) -> None:
    """Record WorkflowExecutionCancelRequested once; later requests are no-ops.

    Temporal answers a repeated cancel request with success too: the workflow already knows
    it was asked, and it decides what cancellation means.
    """
    st = txn.state
    if st.cancel_requested:
        return
    st.cancel_requested = True
    st.cancel_request_id = request_id
    workflow_task.add_workflow_event(
        txn,
        wire.WorkflowExecutionCancelRequestedAttributes(
            cause=reason, identity=identity, external_workflow_id=external_workflow_id
        )
    )


# --- commands ----------------------------------------------------------------------------


def check_marker(cmd: wire.RecordMarkerCommand, cfg: HistoryConfig) -> str | None:
    """Why a RecordMarker command is invalid, or None."""
    if not cmd.marker_name:
        return "marker_name must not be empty"
    if len(cmd.marker_name) > MARKER_NAME_CHARS_MAX:
        return f"marker_name is {len(cmd.marker_name)} characters; the limit is {MARKER_NAME_CHARS_MAX}"
    size = sum(wire.payloads_size(p) for p in cmd.details.values())
    if size > cfg.payload_bytes_max:
        return f"marker details are {size} bytes; the limit is {cfg.payload_bytes_max} bytes"
    return None


def check_continue_as_new(
    state: records.ExecutionState, cmd: wire.ContinueAsNewWorkflowExecutionCommand, cfg: HistoryConfig
) -> str | None:
    """Why a ContinueAsNew command is invalid, or None (the new run's start request is checked)."""
    try:
        start.check_request(_new_run_request(state, cmd, request_id="check"), cfg)
    except wire.ShoalError as exc:
        return exc.message
    return None


def record_marker(txn: Txn, cmd: wire.RecordMarkerCommand, completed_event_id: int) -> None:
    txn.append(
        wire.MarkerRecordedAttributes(
            marker_name=cmd.marker_name, details=dict(cmd.details),
            workflow_task_completed_event_id=completed_event_id,
        )
    )


def cancel_workflow(txn: Txn, cmd: wire.CancelWorkflowExecutionCommand, completed_event_id: int) -> None:
    txn.close(
        wire.WorkflowExecutionCanceledAttributes(
            workflow_task_completed_event_id=completed_event_id, details=list(cmd.details)
        )
    )


def continue_as_new(
    txn: Txn, cmd: wire.ContinueAsNewWorkflowExecutionCommand, completed_event_id: int, *, new_run_id: str
) -> None:
    """Close the run with WorkflowExecutionContinuedAsNew and build its successor.

    The new run keeps the workflow id, the first run's id and the execution's deadline
    (an execution timeout spans the whole chain, as in Temporal); its history starts fresh.
    It is handed to the shell as ``txn.tr.new_run``, which makes it the current run in the
    same log entry, so there is never a moment with no current run.
    """
    st = txn.state
    req = _new_run_request(st, cmd, request_id=f"continue-as-new:{st.run_id}")
    new_state, new_tr = start.new_run(
        req, namespace=st.namespace, run_id=new_run_id, now=txn.now, cfg=txn.cfg, continued_from=st
    )
    txn.close(
        wire.WorkflowExecutionContinuedAsNewAttributes(
            new_execution_run_id=new_run_id, workflow_type=new_state.workflow_type,
            task_queue=new_state.task_queue, input=list(cmd.input),
            workflow_run_timeout_s=req.workflow_run_timeout_s,
            workflow_task_timeout_s=new_state.workflow_task_timeout_s,
            workflow_task_completed_event_id=completed_event_id,
        )
    )
    st.new_execution_run_id = new_run_id
    txn.tr.new_run = (new_state, new_tr)


def _new_run_request(
    st: records.ExecutionState, cmd: wire.ContinueAsNewWorkflowExecutionCommand, *, request_id: str
) -> wire.StartWorkflowRequest:
    return wire.StartWorkflowRequest(
        workflow_id=st.workflow_id, workflow_type=cmd.workflow_type or st.workflow_type,
        task_queue=cmd.task_queue or st.task_queue, request_id=request_id, input=list(cmd.input),
        workflow_run_timeout_s=cmd.workflow_run_timeout_s,
        workflow_task_timeout_s=cmd.workflow_task_timeout_s or st.workflow_task_timeout_s,
        retry_policy=cmd.retry_policy,
        memo=dict(st.memo if cmd.memo is None else cmd.memo),
        search_attributes=dict(st.search_attributes if cmd.search_attributes is None else cmd.search_attributes),
    )


SEARCH_ATTRIBUTES_MAX = 100
SEARCH_ATTRIBUTE_NAME_CHARS_MAX = 256


def check_upsert(state: records.ExecutionState, cmd: wire.UpsertWorkflowSearchAttributesCommand,
                 cfg: HistoryConfig) -> str | None:
    """Why an UpsertWorkflowSearchAttributes command is invalid, or None."""
    if not cmd.search_attributes:
        return "UpsertWorkflowSearchAttributes names no attributes"
    for name in cmd.search_attributes:
        if not name or len(name) > SEARCH_ATTRIBUTE_NAME_CHARS_MAX:
            return f"search attribute names must be 1 to {SEARCH_ATTRIBUTE_NAME_CHARS_MAX} characters"
    merged = {**state.search_attributes, **cmd.search_attributes}
    count = sum(1 for v in merged.values() if v)
    if count > SEARCH_ATTRIBUTES_MAX:
        return f"{count} search attributes; the limit is {SEARCH_ATTRIBUTES_MAX}"
    size = sum(len(v) for v in cmd.search_attributes.values())
    if size > cfg.payload_bytes_max:
        return f"search attributes are {size} bytes; the limit is {cfg.payload_bytes_max} bytes"
    return None


MEMO_FIELDS_MAX = 100


def check_memo(state: records.ExecutionState, cmd: wire.ModifyWorkflowPropertiesCommand,
               cfg: HistoryConfig) -> str | None:
    """Why a ModifyWorkflowProperties (``upsert_memo``) command is invalid, or None."""
    if not cmd.upserted_memo:
        return "upsert_memo names no memo fields"
    if any(not name or len(name) > SEARCH_ATTRIBUTE_NAME_CHARS_MAX for name in cmd.upserted_memo):
        return f"memo field names must be 1 to {SEARCH_ATTRIBUTE_NAME_CHARS_MAX} characters"
    merged = {**state.memo, **cmd.upserted_memo}
    count = sum(1 for v in merged.values() if v)
    if count > MEMO_FIELDS_MAX:
        return f"{count} memo fields; the limit is {MEMO_FIELDS_MAX}"
    size = sum(len(v) for v in merged.values())
    if size > cfg.payload_bytes_max:
        return f"the memo would be {size} bytes; the limit is {cfg.payload_bytes_max} bytes"
    return None


def upsert_memo(txn: Txn, cmd: wire.ModifyWorkflowPropertiesCommand, completed_event_id: int) -> None:
    """Record the memo change and apply it to the run's memo (describe and list show it)."""
    txn.append(wire.WorkflowPropertiesModifiedAttributes(
        workflow_task_completed_event_id=completed_event_id,
        upserted_memo=dict(cmd.upserted_memo)))
    memo = txn.state.memo
    for name, value in cmd.upserted_memo.items():
        if value:
            memo[name] = value
        else:
            memo.pop(name, None)


def upsert_search_attributes(txn: Txn, cmd: wire.UpsertWorkflowSearchAttributesCommand,
                             completed_event_id: int) -> None:
    """Record the upsert and apply it to the run's search attributes (visibility follows)."""
    txn.append(wire.UpsertWorkflowSearchAttributesAttributes(
        workflow_task_completed_event_id=completed_event_id,
        search_attributes=dict(cmd.search_attributes)))
    attrs = txn.state.search_attributes
    for name, value in cmd.search_attributes.items():
        if value:
            attrs[name] = value
        else:
            attrs.pop(name, None)
