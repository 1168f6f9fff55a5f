"""The deterministic asyncio event loop that workflow code runs on.

Owns: an ``asyncio.AbstractEventLoop`` whose clock is the current workflow task's start
time and whose timers are durable (``call_later`` asks the runtime for a StartTimer command,
cancelling the handle asks for CancelTimer; a timer fires only when history says
TimerFired). It runs ready callbacks in FIFO order until none is left, then returns: there
is no waiting, no I/O and no wall clock in here, so the same history always runs the same
callbacks in the same order (DESIGN §1, STYLE "the workflow runtime obeys the same rule").

Must not: block, read ``time.*``, touch threads or trio, or leave itself installed as
asyncio's running loop after ``run_until_idle`` returns (the worker runs under trio in the
same thread).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
from typing import Any, Callable, Iterator, Optional, Protocol

log = logging.getLogger(__name__)


class TimerSink(Protocol):
    """What the loop asks of the runtime when workflow code starts or cancels a timer."""

    def start_timer(self, handle: DurableTimerHandle, delay_s: float) -> None: ...

    def cancel_timer(self, handle: DurableTimerHandle) -> None: ...


class DurableTimerHandle(asyncio.TimerHandle):
    """A ``call_later`` handle backed by a server-side timer (StartTimer / TimerFired).

    ``timer_id`` is assigned by the runtime when the StartTimer command is created;
    ``fired`` turns True when history delivers TimerFired, after which cancelling the
    handle only suppresses the callback and sends nothing.
    """

    __slots__ = ("timer_id", "fired")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...],
                 loop: WorkflowLoop, context: Optional[contextvars.Context] = None) -> None:
        super().__init__(when, callback, args, loop, context)
        self.timer_id = ""
        self.fired = False


class WorkflowLoop(asyncio.AbstractEventLoop):
    """An asyncio loop driven by history instead of a clock and a selector.

    Args:
        timers: Receives timer starts and cancellations (the workflow runtime).
    """

    def __init__(self, timers: TimerSink) -> None:
        self._timers = timers
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._now = 0.0
        self._running = False
        self._callback_error: Optional[BaseException] = None
        # Set by the runtime so the workflow API can find it from get_running_loop().
        self.shoal_runtime: Any = None

    # --- driving -----------------------------------------------------------------------

    def set_time(self, now: float) -> None:
        """Set the clock to a workflow task's start time (never moves backwards)."""
        self._now = max(self._now, now)

    def fire(self, handle: DurableTimerHandle) -> None:
        """History says this timer fired: queue its callback unless it was cancelled."""
        handle.fired = True
        if not handle.cancelled():
            self._ready.append(handle)

    def run_until_idle(self, on_idle: Callable[[], bool],
                       should_stop: Callable[[], bool]) -> Optional[BaseException]:
        """Run ready callbacks until none is left and ``on_idle`` makes no progress.

        Args:
            on_idle: Called when the ready queue is empty; returns True if it scheduled
                more work (a ``wait_condition`` became true).
            should_stop: Checked after every callback; True ends the run at once (a
                workflow task failure makes further progress pointless).

        Returns:
            An exception a plain callback raised (a task failure), or None.
        """
        self._callback_error = None
        with self.entered():
            while True:
                while self._ready and self._callback_error is None and not should_stop():
                    handle = self._ready.popleft()
                    if not handle.cancelled():
                        handle._run()
                if self._callback_error is not None or should_stop():
                    break
                if not on_idle():
                    break
        return self._callback_error

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Install this loop as asyncio's running loop, restoring the previous one after."""
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        try:
            yield
        finally:
            self._running = False
            asyncio.events._set_running_loop(previous)

    def has_ready(self) -> bool:
        """Whether callbacks are queued (used by tests and teardown)."""
        return bool(self._ready)

    # --- asyncio.AbstractEventLoop: time and scheduling ------------------------------

    def time(self) -> float:
        """The current workflow task's start time, seconds since the epoch."""
        return self._now

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: Optional[contextvars.Context] = None) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any,
                             context: Optional[contextvars.Context] = None) -> asyncio.Handle:
        raise RuntimeError("workflow code must not use threads (call_soon_threadsafe)")

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,
                   context: Optional[contextvars.Context] = None) -> asyncio.TimerHandle:
        """Start a durable timer; a non-positive delay just queues the callback."""
        if delay <= 0:
            # asyncio.timeout() with a past deadline lands here; no server timer needed.
            soon = asyncio.TimerHandle(self._now, callback, args, self, context)
            self._ready.append(soon)
            return soon
        handle = DurableTimerHandle(self._now + delay, callback, args, self, context)
        self._timers.start_timer(handle, float(delay))
        return handle

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,
                context: Optional[contextvars.Context] = None) -> asyncio.TimerHandle:
        return self.call_later(when - self._now, callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # asyncio.TimerHandle.cancel() calls this; a durable one turns into CancelTimer.
        if isinstance(handle, DurableTimerHandle) and not handle.fired:
            self._timers.cancel_timer(handle)

    # --- futures and tasks -----------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Any, *, name: Optional[str] = None,
                    context: Optional[contextvars.Context] = None) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_task_factory(self) -> None:
        return None

    def set_task_factory(self, factory: Any) -> None:
        raise NotImplementedError("workflow loops do not support task factories")

    # --- state -----------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return False

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def close(self) -> None:
        pass

    async def shutdown_asyncgens(self) -> None:
        pass

    async def shutdown_default_executor(self, timeout: Optional[float] = None) -> None:
        pass

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        raise RuntimeError("workflow code must not use executors; call an activity instead")

    # --- errors ----------------------------------------------------------------------

    def get_exception_handler(self) -> None:
        return None

    def set_exception_handler(self, handler: Any) -> None:
        raise NotImplementedError("workflow loops do not support custom exception handlers")

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        log.debug("workflow loop exception message=%s", context.get("message"))

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # A plain callback that raised (asyncio.Handle._run reports it here with 'handle')
        # is a bug in workflow code: fail the workflow task. Reports about futures or
        # tasks ("never retrieved", "destroyed but pending") arrive from the garbage
        # collector at arbitrary times, possibly while another instance runs, so they
        # must never fail anything.
        exc = context.get("exception")
        if self._running and exc is not None and "handle" in context:
            if self._callback_error is None:
                self._callback_error = exc
            return
        self.default_exception_handler(context)
