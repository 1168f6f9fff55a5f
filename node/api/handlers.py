"""The node's op handlers, composed: one object per group of ops and the table the
dispatcher serves from.

Owns: building the handler groups over one ``ShardSet`` (workflows, tasks, interactions,
visibility, cross-workflow peer ops) and mapping every op to its handler. Must not: serve an
op itself (each group does) or know where a request is served (the router does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shoal import wire
from shoal.node.api.interactions import InteractionOps
from shoal.node.api.tasks import TaskOps
from shoal.node.api.visibility import VisibilityOps
from shoal.node.api.workflows import WorkflowOps
from shoal.node.history.engine import HistoryEngine
from shoal.node.matching.matching import Matching
from shoal.node.shard.cross_workflow import CrossWorkflow
from shoal.node.shard.queries import Queries
from shoal.node.shard.shard import TaskSink
from shoal.node.shard.shards import ShardSet
from shoal.node.shard.updates import Updates

Handler = Callable[[str, Any], Awaitable[Any]]


class Handlers:
    """Every handler group of one node.

    Args:
        shards: this node's view of every history shard.
        engine: the history engine the groups run inside shard mailboxes.
        matching: this node's task queue partitions (polls park here).
        tasks: where dispatched tasks go (this node's matching, or the task router).
    """

    def __init__(self, shards: ShardSet, engine: HistoryEngine, matching: Matching,
                 tasks: TaskSink) -> None:
        self.shards, self.engine, self.matching, self.tasks = shards, engine, matching, tasks
        self.queries = Queries(tasks, shards.view.me)
        self.updates = Updates()
        self.workflows = WorkflowOps(shards, engine)
        self.task_ops = TaskOps(shards, engine, matching, self.queries, self.updates)
        self.interactions = InteractionOps(shards, engine, self.queries, self.updates)
        self.visibility = VisibilityOps(shards)
        self.cross_workflow = CrossWorkflow(shards, engine)

    def table(self) -> dict[wire.Op, Handler]:
        """Each op this node serves from its shards, with its handler."""
        w, t, i, v, x = (self.workflows, self.task_ops, self.interactions, self.visibility,
                         self.cross_workflow)
        return {
            wire.Op.START_WORKFLOW: w.start_workflow,
            wire.Op.GET_RESULT: w.get_result,
            wire.Op.DESCRIBE_WORKFLOW: w.describe_workflow,
            wire.Op.GET_HISTORY: w.get_history,
            wire.Op.LIST_WORKFLOWS: v.list_workflows,
            wire.Op.COUNT_WORKFLOWS: v.count_workflows,
            wire.Op.POLL_WORKFLOW_TASK: t.poll_workflow_task,
            wire.Op.COMPLETE_WORKFLOW_TASK: t.complete_workflow_task,
            wire.Op.FAIL_WORKFLOW_TASK: t.fail_workflow_task,
            wire.Op.POLL_ACTIVITY_TASK: t.poll_activity_task,
            wire.Op.COMPLETE_ACTIVITY_TASK: t.complete_activity_task,
            wire.Op.FAIL_ACTIVITY_TASK: t.fail_activity_task,
            wire.Op.RECORD_ACTIVITY_HEARTBEAT: t.record_activity_heartbeat,
            wire.Op.RESPOND_ACTIVITY_TASK_CANCELED: t.respond_activity_task_canceled,
            wire.Op.SIGNAL_WORKFLOW: i.signal_workflow,
            wire.Op.SIGNAL_WITH_START_WORKFLOW: i.signal_with_start_workflow,
            wire.Op.REQUEST_CANCEL_WORKFLOW: i.request_cancel_workflow,
            wire.Op.TERMINATE_WORKFLOW: i.terminate_workflow,
            wire.Op.QUERY_WORKFLOW: i.query_workflow,
            wire.Op.RESPOND_QUERY_TASK: i.respond_query_task,
            wire.Op.UPDATE_WORKFLOW: i.update_workflow,
            wire.Op.POLL_WORKFLOW_UPDATE: i.poll_workflow_update,
            # peer ops: another node (or this one's router) asks the shard's leader
            wire.Op.START_TASK: t.start_task,
            wire.Op.START_CHILD_RUN: x.start_child_run,
            wire.Op.RECORD_CHILD_CLOSED: x.record_child_closed,
            wire.Op.CHANGE_RUN: x.change_run,
            wire.Op.SCAN_VISIBILITY: v.scan_visibility,
        }
