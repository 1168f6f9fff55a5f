"""Where each request is served, and getting it there (DESIGN §3, steps 1, 4 and 5).

Owns: the view of the cluster the request path asks (is shard ``s`` served here? who leads
it? who owns a task queue's partition? a node's API address), routing every op to the node
that serves it (a shard's leader, a task queue's partition owner, the node holding a query)
and forwarding it over a peer connection, retrying a stale guess with the hint the other
node answers, and the task router that hands committed workflow and activity tasks to their
partition owner's matching. Must not: decide placement (the ring and the steward do) or
serve an op (the service does).

A single node uses the very same path with :class:`SoloView` (everything is served here), so
there is no separate single-node mode in the request path.

Forwarding is one hop: a node that receives a forwarded request (its connection's handshake
says ``peer``) serves it or answers ``NOT_LEADER`` with a hint; only the node the client
called retries, so a request can never circle between nodes whose views disagree.

The partition drill (``node/cluster/netfault.py``) cuts forwarding as a network would: a call to a
blocked peer fails as a lost connection, before it is sent or, if the drill is set while
it is in flight (a long poll), then; the router and the task router retry as after any
lost connection, re-resolving who serves.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from shoal import wire
from shoal.node.matching.matching import DispatchTask, Matching
from shoal.node.cluster.netfault import NetworkFaults
from shoal.node.cluster.routing import shard_for
from shoal.ring.placement import partition_owner
from shoal.sdk.connection import ConnectionLost, RPCError, ServiceConnection
from shoal.store.records import TransferKind

log = logging.getLogger(__name__)

ROUTE_FOR_S = 15.0  # how long a request waits for its shard or partition to have a server
PEER_CALL_RETRY_S = 0.0  # a peer call is tried once; the router decides what to do next
TASK_SEND_BATCH_MAX = 256
TASK_RESEND_S = 0.25  # an undelivered task batch is retried (re-resolving its owner) this often

LocalCall = Callable[[str, wire.Op, Any], Awaitable[Any]]


class ClusterView(Protocol):
    """What the request path needs to know about the cluster."""

    me: str

    def serving(self, shard: int) -> bool:
        """This node leads ``shard`` and may write it."""

    def leader(self, shard: int) -> str | None:
        """Who leads ``shard`` as far as this node knows (a hint); None: nobody known."""

    def partition_owner(self, namespace: str, queue: str) -> str:
        """The node whose matching holds ``queue``'s tasks and parks its polls."""

    def api_addr(self, node: str) -> str | None:
        """``HOST:PORT`` of ``node``'s API, or None while unknown."""


class SoloView:
    """One node: every shard and every partition is served here."""

    def __init__(self, me: str) -> None:
        self.me = me

    def serving(self, shard: int) -> bool:
        return True

    def leader(self, shard: int) -> str | None:
        return self.me

    def partition_owner(self, namespace: str, queue: str) -> str:
        return self.me

    def api_addr(self, node: str) -> str | None:
        return None


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


class PeerCalls:
    """One multiplexed connection per peer node's API, opened on demand and kept.

    Each connection handshakes as a ``peer``, so the other node never forwards what we send.
    ``faults``: the node's partition drill; calls to a peer it cuts off fail (none: nothing
    is ever cut).
    """

    def __init__(self, me: str, cluster_key: bytes | None = None,
                 faults: NetworkFaults | None = None) -> None:
        self.me = me
        self._identity = f"peer:{me}"
        self._credentials = wire.peer_credentials(cluster_key, self._identity)
        self._conns: dict[str, ServiceConnection] = {}
        self.faults = faults if faults is not None else NetworkFaults()
        self._in_flight: dict[str, set[trio.CancelScope]] = {}  # by peer address
        self.faults.on_change.append(self._cut)

    async def call(self, addr: str, namespace: str, op: wire.Op, body: Any) -> Any:
        """Raises ``RPCError`` (the peer's answer) or ``ConnectionLost`` (also when the
        partition drill cuts the peer off, before or during the call)."""
        if self.faults.blocks_addr(addr):
            self.faults.stats.fault_calls_failed_out += 1
            raise ConnectionLost(f"{addr} is cut off by this node's partition drill")
        key = f"{namespace}@{addr}"
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conns[key] = ServiceConnection(addr, namespace, identity=self._identity,
                                                        peer=True, credentials=self._credentials)
        scope = trio.CancelScope()
        in_flight = self._in_flight.setdefault(addr, set())
        in_flight.add(scope)
        try:
            with scope:
                return await conn.call(op, body, retry_for_s=PEER_CALL_RETRY_S)
        finally:
            in_flight.discard(scope)
        # Only ``_cut`` cancels this scope: the answer is lost in the partition.
        self.faults.stats.fault_calls_lost_out += 1
        raise ConnectionLost(f"{addr} was cut off by this node's partition drill mid-call")

    def _cut(self) -> None:
        """The drill changed: calls in flight to a peer it now blocks end at once, as on a
        cut connection, rather than when the peer answers (a parked long poll: 30 s)."""
        for addr, scopes in self._in_flight.items():
            if scopes and self.faults.blocks_addr(addr):
                for scope in scopes:
                    scope.cancel()

    async def aclose(self) -> None:
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            with trio.CancelScope(shield=True):
                await conn.close()


def not_leader(what: str, node: str | None, view: ClusterView) -> wire.ShoalError:
    """``NOT_LEADER`` with the hint a forwarding node retries with."""
    hint = {"leader": node, "addr": view.api_addr(node)} if node else {}
    return wire.ShoalError(wire.Code.NOT_LEADER,
                           f"{what} is not served by this node" + (f"; try {node}" if node else ""),
                           **hint)


class Router:
    """Runs each op where it is served: here (``local``), or forwarded to that node.

    Args:
        view: the cluster as this node sees it.
        num_shards: NUM_SHARDS of the cluster.
        peers: the peer connections forwarded requests go over.
        local: serves an op on this node (the dispatcher's handler table).
    """

    def __init__(self, view: ClusterView, num_shards: int, peers: PeerCalls | None,
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
                        return await self.peers.call(addr, namespace, op, body)  # type: ignore[union-attr]
                    except RPCError as exc:
                        if exc.code != wire.Code.NOT_LEADER:
                            raise wire.ShoalError(_code(exc.code), exc.message, **exc.details) from None
                        self.retried += 1
                        leader = exc.details.get("leader")
                        hint = leader if isinstance(leader, str) and leader != node else None
                        why = exc.message
                    except ConnectionLost as exc:
                        why = str(exc)
            if trio.current_time() + delay > deadline:
                raise wire.ShoalError(
                    wire.Code.UNAVAILABLE,
                    f"{self._describe(target)} has no reachable server after {ROUTE_FOR_S:g}s "
                    f"({why}); retry once the cluster has settled")
            await trio.sleep(delay)
            delay = min(delay * 2, 0.5)


def _code(name: str) -> wire.Code:
    try:
        return wire.Code(name)
    except ValueError:  # a newer peer's code we do not know
        return wire.Code.INTERNAL


# --- tasks to their partition owner ------------------------------------------------------


def to_wire(task: DispatchTask) -> wire.TaskDispatch:
    return wire.TaskDispatch(
        shard=task.shard, task_id=task.task_id, kind=int(task.kind), namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, task_queue=task.task_queue,
        scheduled_event_id=task.scheduled_event_id, attempt=task.attempt, query_id=task.query_id)


def from_wire(task: wire.TaskDispatch) -> DispatchTask:
    """Raises ShoalError(INVALID_ARGUMENT) for a kind matching does not hold."""
    try:
        kind = TransferKind(task.kind)
    except ValueError:
        kind = None
    if kind not in (TransferKind.WORKFLOW_TASK, TransferKind.ACTIVITY_TASK):
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"task kind {task.kind} is not matched")
    return DispatchTask(
        shard=task.shard, task_id=task.task_id, kind=kind, namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, task_queue=task.task_queue,
        scheduled_event_id=task.scheduled_event_id, attempt=task.attempt, query_id=task.query_id)


class TaskRouter:
    """Hands each dispatched task to its partition owner's matching (a ``TaskSink``).

    Local owners get it at once; remote ones in ``ADD_TASKS`` batches from one sender task
    per owner. A batch that cannot be delivered is retried (its owner re-resolved, so a
    dead owner's tasks go to its successor); tasks of a shard this node no longer leads are
    dropped, since the new leader re-dispatches them from its outbox.
    """

    def __init__(self, view: ClusterView, matching: Matching, peers: PeerCalls | None,
                 still_mine: Callable[[DispatchTask], bool] = lambda t: True) -> None:
        self.view, self.matching, self.peers, self.still_mine = view, matching, peers, still_mine
        self._pending: list[DispatchTask] = []
        self._wake = trio.Event()
        self.sent = 0
        self.resent = 0

    def add(self, task: DispatchTask) -> bool:
        owner = self.view.partition_owner(task.namespace, task.task_queue)
        if owner == self.view.me:
            return self.matching.add(task)
        self._pending.append(task)
        self._wake.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver remote tasks until cancelled."""
        task_status.started()
        while True:
            if not self._pending:
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            pending, self._pending = self._pending, []
            by_owner: dict[str, list[DispatchTask]] = {}
            for task in pending:
                if not self.still_mine(task):
                    continue
                owner = self.view.partition_owner(task.namespace, task.task_queue)
                if owner == self.view.me:
                    self.matching.add(task)
                else:
                    by_owner.setdefault(owner, []).append(task)
            failed: list[DispatchTask] = []
            async with trio.open_nursery() as nursery:
                for owner, tasks in by_owner.items():
                    nursery.start_soon(self._send, owner, tasks, failed)
            if failed:
                self.resent += len(failed)
                self._pending = failed + self._pending
                await trio.sleep(TASK_RESEND_S)

    async def _send(self, owner: str, tasks: list[DispatchTask], failed: list[DispatchTask]) -> None:
        addr = self.view.api_addr(owner)
        for i in range(0, len(tasks), TASK_SEND_BATCH_MAX):
            chunk = tasks[i:i + TASK_SEND_BATCH_MAX]
            try:
                if addr is None or self.peers is None:
                    raise ConnectionLost(f"no address for {owner}")
                with trio.fail_after(5.0):
                    await self.peers.call(addr, chunk[0].namespace, wire.Op.ADD_TASKS,
                                          wire.AddTasksRequest(tasks=[to_wire(t) for t in chunk]))
                self.sent += len(chunk)
            except (RPCError, ConnectionLost, trio.TooSlowError) as exc:
                log.debug("tasks to %s not delivered, will retry: %s", owner, exc)
                failed.extend(chunk)

    async def on_add_tasks(self, namespace: str, req: wire.AddTasksRequest) -> wire.Empty:
        """``ADD_TASKS``: tasks for this node's matching. Bad entries are refused whole."""
        tasks = [from_wire(t) for t in req.tasks]
        for task in tasks:
            self.matching.add(task)
        return wire.Empty()


class RingView:
    """The cluster as gossip, the ring and this node's replicas show it.

    Args:
        me: this node's id.
        replicas: this node's shard replicas (who serves, who leads).
        members: the alive members' API addresses by node id (gossip's view; ourselves
            included), re-read on every membership change.
    """

    def __init__(self, me: str, replicas: Any, members: Callable[[], dict[str, str]]) -> None:
        self.me, self.replicas, self._members = me, replicas, members
        self._alive: dict[str, str] = {me: ""}
        self.refresh()

    def refresh(self) -> None:
        """Membership changed: re-read who is alive."""
        self._alive = self._members() or {self.me: ""}

    @property
    def alive(self) -> list[str]:
        return sorted(self._alive)

    def serving(self, shard: int) -> bool:
        return self.replicas.serving(shard)

    def leader(self, shard: int) -> str | None:
        known = self.replicas.leader_of(shard)
        if known is not None:
            return known
        target = self.replicas.steward.target(shard, time.monotonic())
        return target[0] if target else None

    def partition_owner(self, namespace: str, queue: str) -> str:
        return partition_owner(self._alive, namespace, queue, 0)

    def api_addr(self, node: str) -> str | None:
        addr = self._alive.get(node)
        return addr.removeprefix("ws://") if addr else None
