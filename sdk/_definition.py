"""Workflow class decorators and the definition the worker reads from a decorated class.

Owns: ``@workflow.defn``, ``@workflow.run``, ``@workflow.init`` and the (declared, not yet
dispatched) ``@workflow.signal`` / ``@workflow.query`` / ``@workflow.update`` decorators,
and ``WorkflowDefinition``: name, class, run method, argument and return types. Must not:
run workflow code or know about the event loop.

Signals, queries and updates: the decorators record their definitions now so workflow
classes written for temporalio import and register unchanged; a later issue routes the
matching history events and requests to them (``WorkflowDefinition.signals`` etc.).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, TypeVar, overload

from shoal.sdk.common import type_hints_from_func

ClassType = TypeVar("ClassType", bound=type)
CallableType = TypeVar("CallableType", bound=Callable[..., Any])

_DEFN_ATTR = "__shoal_workflow_definition__"
_RUN_ATTR = "__shoal_workflow_run__"
_INIT_ATTR = "__shoal_workflow_init__"
_SIGNAL_ATTR = "__shoal_signal_definition__"
_QUERY_ATTR = "__shoal_query_definition__"
_UPDATE_ATTR = "__shoal_update_definition__"
_VALIDATOR_ATTR = "__shoal_update_validator__"


@dataclass(frozen=True)
class HandlerDefinition:
    """A signal, query or update handler method. ``name`` None: dynamic (catch-all)."""

    name: Optional[str]
    fn: Callable[..., Any]
    arg_types: Optional[list[Any]]
    ret_type: Any


@dataclass(frozen=True)
class WorkflowDefinition:
    """Everything the worker needs to run a ``@workflow.defn`` class.

    Attributes:
        name: The workflow type name (the class name unless ``defn(name=...)``).
        cls: The class.
        run_fn: The ``@workflow.run`` method (unbound).
        arg_types: Type hints of the run method's arguments (None: decode untyped).
        ret_type: The run method's return type hint (None when not annotated).
        init_takes_args: ``__init__`` is ``@workflow.init``: it receives the run arguments.
        failure_exception_types: Exceptions that fail the workflow (besides FailureError)
            instead of failing the workflow task.
        signals, queries, updates: Handler definitions by name.
    """

    name: str
    cls: type
    run_fn: Callable[..., Any]
    arg_types: Optional[list[Any]]
    ret_type: Any
    init_takes_args: bool = False
    failure_exception_types: tuple[type[BaseException], ...] = ()
    signals: dict[Optional[str], HandlerDefinition] = field(default_factory=dict)
    queries: dict[Optional[str], HandlerDefinition] = field(default_factory=dict)
    updates: dict[Optional[str], HandlerDefinition] = field(default_factory=dict)

    @staticmethod
    def from_class(cls: type) -> WorkflowDefinition:
        """The definition of a decorated class.

        Raises:
            TypeError: ``cls`` is not a class decorated with ``@workflow.defn``.
        """
        defn = cls.__dict__.get(_DEFN_ATTR) if isinstance(cls, type) else None
        if not isinstance(defn, WorkflowDefinition):
            name = getattr(cls, "__qualname__", repr(cls))
            raise TypeError(f"{name} is not a workflow class: decorate it with @workflow.defn")
        return defn

    @staticmethod
    def from_run_fn(fn: Callable[..., Any]) -> WorkflowDefinition:
        """The definition owning a ``@workflow.run`` method (``client.start_workflow(Cls.run)``).

        Raises:
            TypeError: ``fn`` is not the run method of a ``@workflow.defn`` class.
        """
        defn = getattr(fn, _DEFN_ATTR, None)
        if not isinstance(defn, WorkflowDefinition):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not a @workflow.run method of a "
                "@workflow.defn class")
        return defn


@overload
def defn(cls: ClassType) -> ClassType: ...


@overload
def defn(*, name: Optional[str] = None, sandboxed: bool = True, dynamic: bool = False,
         failure_exception_types: Sequence[type[BaseException]] = ()
         ) -> Callable[[ClassType], ClassType]: ...


def defn(cls: Any = None, *, name: Optional[str] = None, sandboxed: bool = True,
         dynamic: bool = False,
         failure_exception_types: Sequence[type[BaseException]] = ()) -> Any:
    """Class decorator marking a workflow definition.

    Args:
        cls: The class (when used without parentheses).
        name: Workflow type name; default the class name.
        sandboxed: Accepted for temporalio compatibility and ignored: shoal has no sandbox.
        dynamic: Not supported yet (must be False).
        failure_exception_types: Exception types that fail the workflow rather than the task.

    Raises:
        ValueError: The class has no or several ``@workflow.run`` methods, or the run
            method is not ``async def``.
    """
    del sandboxed  # no sandbox: determinism is the loop's, not an import guard's
    if dynamic:
        raise ValueError("dynamic workflows are not supported yet")

    def decorate(c: ClassType) -> ClassType:
        definition = _build(c, name or c.__name__, tuple(failure_exception_types))
        setattr(c, _DEFN_ATTR, definition)
        # The client finds the workflow type from the run method (Cls.run).
        setattr(definition.run_fn, _DEFN_ATTR, definition)
        return c

    return decorate(cls) if cls is not None else decorate


def _members(cls: type) -> dict[str, Any]:
    # Walk the MRO base-first so subclasses override, seeing raw functions (not bound).
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        found.update(vars(klass))
    return found


def _build(cls: type, name: str, failure_types: tuple[type[BaseException], ...]
           ) -> WorkflowDefinition:
    members = _members(cls)
    runs = [fn for fn in members.values() if callable(fn) and getattr(fn, _RUN_ATTR, False)]
    if not runs:
        raise ValueError(f"workflow class {cls.__qualname__} has no @workflow.run method")
    if len(runs) > 1:
        raise ValueError(f"workflow class {cls.__qualname__} has several @workflow.run methods")
    run_fn = runs[0]
    arg_types, ret_type = type_hints_from_func(run_fn)
    handlers: dict[str, dict[Optional[str], HandlerDefinition]] = {
        _SIGNAL_ATTR: {}, _QUERY_ATTR: {}, _UPDATE_ATTR: {}}
    for member in members.values():
        for attr, table in handlers.items():
            handler = getattr(member, attr, None)
            if isinstance(handler, HandlerDefinition):
                if handler.name in table:
                    raise ValueError(
                        f"workflow class {cls.__qualname__} has two handlers named "
                        f"{handler.name!r}")
                table[handler.name] = handler
    init = members.get("__init__")
    return WorkflowDefinition(
        name=name, cls=cls, run_fn=run_fn, arg_types=arg_types, ret_type=ret_type,
        init_takes_args=bool(getattr(init, _INIT_ATTR, False)),
        failure_exception_types=failure_types,
        signals=handlers[_SIGNAL_ATTR], queries=handlers[_QUERY_ATTR],
        updates=handlers[_UPDATE_ATTR],
    )


def run(fn: CallableType) -> CallableType:
    """Mark the workflow's entry method (``async def``); exactly one per workflow class.

    Raises:
        ValueError: ``fn`` is not a coroutine function.
    """
    if not inspect.iscoroutinefunction(fn):
        raise ValueError(f"@workflow.run method {fn.__qualname__} must be async def")
    setattr(fn, _RUN_ATTR, True)
    return fn


def init(fn: CallableType) -> CallableType:
    """Mark ``__init__`` as taking the same arguments as the run method (temporalio's)."""
    if fn.__name__ != "__init__":
        raise ValueError("@workflow.init may only decorate __init__")
    setattr(fn, _INIT_ATTR, True)
    return fn


def _handler_decorator(attr: str, kind: str, fn: Any, name: Optional[str],
                       dynamic: bool) -> Any:
    def decorate(f: CallableType) -> CallableType:
        if not callable(f):
            raise TypeError(f"@workflow.{kind} must decorate a method")
        arg_types, ret_type = type_hints_from_func(f)
        setattr(f, attr, HandlerDefinition(
            name=None if dynamic else (name or f.__name__), fn=f, arg_types=arg_types,
            ret_type=ret_type))
        if kind == "update":
            # temporalio's ``@my_update.validator`` must exist for classes to import.
            def validator(vfn: CallableType) -> CallableType:
                setattr(f, _VALIDATOR_ATTR, vfn)
                return vfn

            setattr(f, "validator", validator)
        return f

    return decorate(fn) if fn is not None else decorate


def signal(fn: Any = None, *, name: Optional[str] = None, dynamic: bool = False,
           **_ignored: Any) -> Any:
    """Mark a signal handler (declared now; delivery arrives with the signals issue)."""
    return _handler_decorator(_SIGNAL_ATTR, "signal", fn, name, dynamic)


def query(fn: Any = None, *, name: Optional[str] = None, dynamic: bool = False,
          **_ignored: Any) -> Any:
    """Mark a query handler (declared now; answered once queries are implemented)."""
    return _handler_decorator(_QUERY_ATTR, "query", fn, name, dynamic)


def update(fn: Any = None, *, name: Optional[str] = None, dynamic: bool = False,
           **_ignored: Any) -> Any:
    """Mark an update handler (declared now; dispatched once updates are implemented)."""
    return _handler_decorator(_UPDATE_ATTR, "update", fn, name, dynamic)
