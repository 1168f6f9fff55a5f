"""``shoal.testing``: run workflows and activities in tests without a server to set up
(mirrors ``temporalio.testing``).

Owns: ``WorkflowEnvironment.start_local()`` (a real shoal node embedded in the test's own
trio run, on a temporary data dir, and a client connected to it), ``from_client`` (an
environment around a node you run), and ``ActivityEnvironment`` (an activity function
called directly, with its info, heartbeats and cancellation under the test's control).
Must not: be imported by shoal itself; like ``cli/node.py`` it may reach into the node,
which the SDK never does.

Not here yet: ``start_time_skipping`` (a clock that jumps when nothing is runnable); see
docs/temporal-parity.md.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import trio

from shoal.node.node import Node, NodeConfig
from shoal.sdk import activity as _activity
from shoal.sdk import converter as _converter
from shoal.sdk import exceptions as _exc
from shoal.sdk.client import Client

__all__ = ["ActivityEnvironment", "WorkflowEnvironment"]

log = logging.getLogger(__name__)

TEST_NODE_SHARDS = 8  # a test's node: few shards, so it starts in a blink


class WorkflowEnvironment:
    """A shoal node and a client for tests (``temporalio.testing.WorkflowEnvironment``).

    Use ``async with await WorkflowEnvironment.start_local() as env:`` or call
    ``shutdown()``; ``env.client`` starts workflows and backs workers.
    """

    def __init__(self, client: Client, *, _node: Optional[_EmbeddedNode] = None) -> None:
        self._client = client
        self._node = _node

    @property
    def client(self) -> Client:
        """A client connected to the environment's node."""
        return self._client

    @property
    def supports_time_skipping(self) -> bool:
        """False: this environment's clock is the real one."""
        return False

    @classmethod
    def from_client(cls, client: Client) -> WorkflowEnvironment:
        """An environment around a node someone else runs (``shutdown`` leaves it running)."""
        return cls(client)

    @classmethod
    async def start_local(cls, *, namespace: str = "default",
                          data_converter: Optional[_converter.DataConverter] = None,
                          ip: str = "127.0.0.1", port: Optional[int] = None,
                          identity: Optional[str] = None,
                          dev_server_database_filename: Optional[str] = None,
                          **_ignored: Any) -> WorkflowEnvironment:
        """Start a node inside this trio run and connect to it.

        Args:
            ip, port: where the node listens (port None: any free port).
            dev_server_database_filename: a data dir to keep (default: a temporary one,
                removed at shutdown).

        The other temporalio options (UI, dev server download, ...) do not apply and are
        ignored.
        """
        node = await _EmbeddedNode.start(ip, port or 0, dev_server_database_filename)
        try:
            client = await Client.connect(f"ws://{ip}:{node.port}", namespace=namespace,
                                          identity=identity, data_converter=data_converter)
        except BaseException:
            await node.stop()
            raise
        return cls(client, _node=node)

    async def sleep(self, duration: timedelta | float) -> None:
        """Sleep on the environment's clock (the real one here)."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
        await trio.sleep(seconds)

    async def get_current_time(self) -> datetime:
        """The environment's current time."""
        return datetime.now(timezone.utc)

    async def shutdown(self) -> None:
        """Close the client and stop the node this environment started (if it did)."""
        await self._client.close()
        if self._node is not None:
            await self._node.stop()

    async def __aenter__(self) -> WorkflowEnvironment:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()


class _EmbeddedNode:
    """A node running as a trio system task, so it outlives the call that started it."""

    def __init__(self, data_dir: Path, remove: bool) -> None:
        self.data_dir, self._remove = data_dir, remove
        self.port = 0
        self._scope = trio.CancelScope()
        self._started = trio.Event()
        self._stopped = trio.Event()
        self._error: Optional[BaseException] = None

    @classmethod
    async def start(cls, ip: str, port: int, data_dir: Optional[str]) -> _EmbeddedNode:
        keep = data_dir is not None
        path = Path(data_dir) if keep else Path(tempfile.mkdtemp(prefix="shoal-test-"))
        node = cls(path, remove=not keep)
        trio.lowlevel.spawn_system_task(node._run, ip, port)
        await node._started.wait()
        if node._error is not None:
            await node.stop()
            raise RuntimeError(f"the test node did not start: {node._error!r}") from node._error
        return node

    async def _run(self, ip: str, port: int) -> None:
        cfg = NodeConfig(data_dir=self.data_dir, host=ip, port=port,
                         num_shards=TEST_NODE_SHARDS, shard_log="local")
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self.port = await nursery.start(Node(cfg).run)
                    self._started.set()
        except BaseException as exc:  # noqa: BLE001 - a system task must never raise
            if not isinstance(exc, trio.Cancelled):
                self._error = exc
                log.warning("test node stopped: %r", exc)
        finally:
            self._started.set()
            self._stopped.set()

    async def stop(self) -> None:
        self._scope.cancel()
        await self._stopped.wait()
        if self._remove:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class ActivityEnvironment:
    """Call an activity function directly, as a worker would run one attempt of it
    (``temporalio.testing.ActivityEnvironment``).

    Attributes:
        info: what ``activity.info()`` returns inside (``default_info()`` to start from).
        on_heartbeat: called with the details of each ``activity.heartbeat(...)``.
    """

    def __init__(self, client: Optional[Client] = None) -> None:
        del client  # temporalio passes one for async completion; nothing here needs it
        self.info: _activity.Info = self.default_info()
        self.on_heartbeat: Callable[..., None] = lambda *details: None
        self.payload_converter = _converter.default().payload_converter
        self._cancelled = False
        self._scopes: list[trio.CancelScope] = []

    @staticmethod
    def default_info() -> _activity.Info:
        """An ``activity.Info`` with placeholder ids, attempt 1 and no timeouts."""
        now = datetime.now(timezone.utc)
        return _activity.Info(
            activity_id="test", activity_type="unknown", attempt=1, task_token=b"test",
            task_queue="test", workflow_id="test", workflow_run_id="test-run",
            workflow_type="test", workflow_namespace="default", scheduled_time=now,
            current_attempt_scheduled_time=now, started_time=now,
            schedule_to_close_timeout=None, start_to_close_timeout=None,
            heartbeat_timeout=None, heartbeat_details=[])

    def cancel(self) -> None:
        """Cancel the running attempt: ``activity.is_cancelled()`` turns true, and an
        ``async`` activity's ``run`` is cancelled where it waits (it may clean up and
        return, or let ``CancelledError`` out)."""
        self._cancelled = True
        for scope in self._scopes:
            scope.cancel()

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args)`` as the attempt. A plain function runs now and its result is
        returned; an ``async`` one returns an awaitable of its result."""
        ctx = _activity._Context(info=self.info,
                                 heartbeat=lambda details: self.on_heartbeat(*details),
                                 is_cancelled=lambda: self._cancelled)
        result = _call_in(ctx, fn, args, kwargs)
        if not hasattr(result, "__await__"):
            return result
        return self._run_async(ctx, result)

    async def _run_async(self, ctx: _activity._Context, coro: Any) -> Any:
        token = _activity._set_context(ctx)
        scope = trio.CancelScope()
        self._scopes.append(scope)
        try:
            if self._cancelled:
                scope.cancel()
            with scope:
                return await coro
            raise _exc.CancelledError("the activity was cancelled")
        finally:
            self._scopes.remove(scope)
            _activity._reset_context(token)


def _call_in(ctx: _activity._Context, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    token = _activity._set_context(ctx)
    try:
        return fn(*args, **kwargs)
    finally:
        _activity._reset_context(token)
