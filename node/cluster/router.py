"""Where each request is served, and getting it there (DESIGN §3, steps 1, 4 and 5).

Owns: routing every op to the node
that serves it (a shard's leader, a task queue's partition owner, the node holding a query)
and forwarding it over a peer connection, retrying a stale guess with the hint the other
node answers, Must not: decide placement (the ring and the steward do) or
serve an op (the service does).

A single node uses the very same path with :class:`SoloView` (everything is served here), so
there is no separate single-node mode in the request path.

Forwarding is one hop: a node that receives a forwarded request (its connection's handshake
says ``peer``) serves it or answers ``NOT_LEADER`` with a hint; only the node the client
called retries, so a request can never circle between nodes whose views disagree.

The partition drill (``netfault.py``) cuts forwarding as a network would: a call to a
blocked peer fails as a lost connection, before it is sent or, if the drill is set while
it is in flight (a long poll), then; the router and the task router retry as after any
lost connection, re-resolving who serves.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from shoal import wire
from shoal.node.cluster.peer_link import PeerLink, PeerUnavailable
from shoal.node.cluster.routing import shard_for
from shoal.node.cluster.views import ClusterView, not_leader


ROUTE_FOR_S = 15.0  # how long a request waits for its shard or partition to have a server

LocalCall = Callable[[str, wire.Op, Any], Awaitable[Any]]

# --- where an op goes ----------------------------------------------------------------------

Target = tuple[str, Any]  # ("shard", shard id) | ("partition", (namespace, queue)) | ("node", id)


def _token_workflow(raw: bytes) -> str | None:
    try:
        return wire.loads(wire.TaskToken, raw).workflow_id
    except wire.WireError:
        return None  # the handler answers INVALID_ARGUMENT


def _by_workflow(field_of: Callable[[Any], str | None]) -> Callable[[Any], tuple[str, Any] | None]:
    def key(body: Any) -> tuple[str, Any] | None:
        wf_id = field_of(body)
        return None if wf_id is None else ("workflow", wf_id)
    return key


_ROUTES: dict[wire.Op, Callable[[Any], tuple[str, Any] | None]] = {
    wire.Op.START_WORKFLOW: _by_workflow(lambda b: b.workflow_id),
    wire.Op.SIGNAL_WITH_START_WORKFLOW: _by_workflow(lambda b: b.start.workflow_id),
    wire.Op.GET_RESULT: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.DESCRIBE_WORKFLOW: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.GET_HISTORY: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.SIGNAL_WORKFLOW: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.REQUEST_CANCEL_WORKFLOW: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.TERMINATE_WORKFLOW: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.QUERY_WORKFLOW: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.UPDATE_WORKFLOW: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.POLL_WORKFLOW_UPDATE: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.COMPLETE_WORKFLOW_TASK: _by_workflow(lambda b: _token_workflow(b.task_token)),
    wire.Op.FAIL_WORKFLOW_TASK: _by_workflow(lambda b: _token_workflow(b.task_token)),
    wire.Op.COMPLETE_ACTIVITY_TASK: _by_workflow(lambda b: _token_workflow(b.task_token)),
    wire.Op.FAIL_ACTIVITY_TASK: _by_workflow(lambda b: _token_workflow(b.task_token)),
    wire.Op.RECORD_ACTIVITY_HEARTBEAT: _by_workflow(lambda b: _token_workflow(b.task_token)),
    wire.Op.RESPOND_ACTIVITY_TASK_CANCELED: _by_workflow(lambda b: _token_workflow(b.task_token)),
    wire.Op.START_CHILD_RUN: _by_workflow(lambda b: b.request.workflow_id),
    wire.Op.RECORD_CHILD_CLOSED: _by_workflow(lambda b: b.parent.workflow_id),
    wire.Op.CHANGE_RUN: _by_workflow(lambda b: b.execution.workflow_id),
    wire.Op.START_TASK: lambda b: ("shard", b.task.shard),
    wire.Op.POLL_WORKFLOW_TASK: lambda b: ("partition", b.task_queue),
    wire.Op.POLL_ACTIVITY_TASK: lambda b: ("partition", b.task_queue),
    wire.Op.RESPOND_QUERY_TASK: lambda b: ("node", query_node(b.query_id)),
    # One shard's rows (a list's second try) go to its leader; several go where sent.
    wire.Op.SCAN_VISIBILITY: lambda b: ("shard", b.shards[0]) if len(b.shards) == 1 else None,
}


def new_query_id(me: str) -> str:
    """A query id that names the node waiting for the answer (it is routed there)."""
    return f"{me}/{uuid.uuid4()}"


def query_node(query_id: str) -> str | None:
    node, sep, _ = query_id.rpartition("/")
    return node if sep else None


# --- forwarding ----------------------------------------------------------------------------


class Router:
    """Runs each op where it is served: here (``local``), or forwarded to that node.

    Args:
        view: the cluster as this node sees it.
        num_shards: NUM_SHARDS of the cluster.
        peers: the peer connections forwarded requests go over.
        local: serves an op on this node (the dispatcher's handler table).
    """

    def __init__(self, view: ClusterView, num_shards: int, peers: PeerLink | None,
                 local: LocalCall) -> None:
        self.view, self.num_shards, self.peers, self.local = view, num_shards, peers, local
        self.forwarded = 0  # requests this node sent on to another
        self.retried = 0  # stale guesses retried

    def target(self, namespace: str, op: wire.Op, body: Any) -> Target | None:
        """What serves ``op`` (None: any node, so this one)."""
        route = _ROUTES.get(op)
        key = route(body) if route is not None else None
        if key is None:
            return None
        kind, value = key
        if kind == "workflow":
            return ("shard", shard_for(namespace, value, self.num_shards))
        if kind == "shard" and not (isinstance(value, int) and 0 <= value < self.num_shards):
            return None  # served here: the handler names the bad shard id
        if kind == "partition":
            return ("partition", (namespace, value))
        return key

    def node_for(self, target: Target) -> str | None:
        """The node that serves ``target`` as far as we know (None: nobody known yet)."""
        kind, value = target
        if kind == "shard":
            return self.view.me if self.view.serving(value) else self.view.leader(value)
        if kind == "partition":
            return self.view.partition_owner(*value)
        return value

    def _describe(self, target: Target) -> str:
        kind, value = target
        if kind == "shard":
            return f"shard {value}"
        if kind == "partition":
            return f"task queue {value[1]!r}"
        return f"node {value}"

    async def call(self, namespace: str, op: wire.Op, body: Any, *, forwarded: bool = False) -> Any:
        """Serve ``op`` here or on the node that serves it; returns the answer body.

        ``forwarded``: the request came from a peer; serve it here or raise NOT_LEADER.

        Raises:
            ShoalError: the serving node's error; UNAVAILABLE when nobody served it within
                ``ROUTE_FOR_S`` (no leader elected, or its node unreachable).
        """
        target = self.target(namespace, op, body)
        if target is None:
            return await self.local(namespace, op, body)
        deadline = trio.current_time() + ROUTE_FOR_S
        delay, hint, why = 0.02, None, "no node serves it yet"
        while True:
            node = hint or self.node_for(target)
            hint = None
            if node == self.view.me:
                try:
                    return await self.local(namespace, op, body)
                except wire.ShoalError as exc:
                    # NOT_LEADER from the shard itself: it moved before the entry committed
                    # (nothing was written), so the request may be sent to the new leader.
                    if exc.code != wire.Code.NOT_LEADER:
                        raise
                    if forwarded:
                        raise not_leader(self._describe(target), self.view.leader(target[1])
                                         if target[0] == "shard" else None, self.view) from None
                    why = exc.message
            elif forwarded:
                raise not_leader(self._describe(target), node, self.view)
            elif node is not None:
                addr = self.view.api_addr(node)
                if addr is None:
                    why = f"node {node}'s address is not known"
                else:
                    try:
                        self.forwarded += 1
                        return await self.peers.call(addr, op, body, namespace)  # type: ignore[union-attr]
                    except wire.ShoalError as exc:
                        if exc.code != wire.Code.NOT_LEADER:
                            raise
                        self.retried += 1
                        leader = exc.details.get("leader")
                        hint = leader if isinstance(leader, str) and leader != node else None
                        why = exc.message
                    except PeerUnavailable as exc:
                        why = str(exc)
            if trio.current_time() + delay > deadline:
                raise wire.ShoalError(
                    wire.Code.UNAVAILABLE,
                    f"{self._describe(target)} has no reachable server after {ROUTE_FOR_S:g}s "
                    f"({why}); retry once the cluster has settled")
            await trio.sleep(delay)
            delay = min(delay * 2, 0.5)
