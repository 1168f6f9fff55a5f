"""The list filter: Temporal's visibility query language, parsed and evaluated on run summaries.

Owns: turning a query such as ``WorkflowType = 'Order' AND ExecutionStatus = 'Running'`` into
a predicate over ``wire.WorkflowExecutionInfo`` (plus an optional ORDER BY), and the error a
person sees when the query is wrong. Must not: read the store or know about shards; the
service scans rows and asks the filter about each one.

The grammar is the subset of Temporal's SQL-like list filter that its users reach for::

    query      := [expr] [ORDER BY name [ASC|DESC]] [GROUP BY ExecutionStatus]
    expr       := and_expr (OR and_expr)*
    and_expr   := unary (AND unary)*
    unary      := NOT unary | '(' expr ')' | predicate
    predicate  := name op value | name [NOT] IN '(' value (',' value)* ')'
                | name [NOT] BETWEEN value AND value | name IS [NOT] NULL
                | name STARTS_WITH string
    op         := = | != | <> | < | <= | > | >=

Names are the system attributes (WorkflowId, RunId, WorkflowType, ExecutionStatus,
TaskQueue, StartTime, CloseTime, ExecutionTime, HistoryLength, HistorySizeBytes,
ParentWorkflowId, ParentRunId, RootWorkflowId, RootRunId) or custom search attributes
given at start or upserted; a name may be `back-quoted`. Keywords are case-insensitive.
Times compare as instants: a literal is an ISO-8601 string (``'2026-11-29T10:00:00Z'``).
A custom attribute holding a list (a keyword list) matches ``=`` and ``IN`` when any item
does. A custom attribute a run does not have is NULL and matches no comparison, as in SQL.
GROUP BY ExecutionStatus is for counting only, as in Temporal.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import cbor2

from shoal import wire

__all__ = ["ListFilter", "parse", "MAX_QUERY_LENGTH"]

MAX_QUERY_LENGTH = 4096

Predicate = Callable[[wire.WorkflowExecutionInfo], bool]

_STATUS_NAMES = {
    "running": wire.WorkflowExecutionStatus.RUNNING,
    "completed": wire.WorkflowExecutionStatus.COMPLETED,
    "failed": wire.WorkflowExecutionStatus.FAILED,
    "canceled": wire.WorkflowExecutionStatus.CANCELED,
    "terminated": wire.WorkflowExecutionStatus.TERMINATED,
    "continuedasnew": wire.WorkflowExecutionStatus.CONTINUED_AS_NEW,
    "timedout": wire.WorkflowExecutionStatus.TIMED_OUT,
}

# System attribute -> (kind, getter). Kinds decide how literals are read.
_SYSTEM: dict[str, tuple[str, Callable[[wire.WorkflowExecutionInfo], Any]]] = {
    "workflowid": ("str", lambda i: i.workflow_id),
    "runid": ("str", lambda i: i.run_id),
    "workflowtype": ("str", lambda i: i.workflow_type),
    "taskqueue": ("str", lambda i: i.task_queue),
    "executionstatus": ("status", lambda i: i.status),
    "starttime": ("time", lambda i: i.start_time),
    "closetime": ("time", lambda i: i.close_time),
    "executiontime": ("time", lambda i: i.execution_time if i.execution_time else i.start_time),
    "historylength": ("int", lambda i: i.history_length),
    # Temporal's parent and root attributes; a run without a parent has NULL parent ids.
    "parentworkflowid": ("str", lambda i: i.parent_execution.workflow_id if i.parent_execution else None),
    "parentrunid": ("str", lambda i: i.parent_execution.run_id if i.parent_execution else None),
    "rootworkflowid": ("str", lambda i: i.root_execution.workflow_id if i.root_execution else None),
    "rootrunid": ("str", lambda i: i.root_execution.run_id if i.root_execution else None),
    "historysizebytes": ("int", lambda i: i.history_size_bytes),
}

_ORDERABLE = {"starttime", "closetime", "executiontime", "workflowid", "workflowtype",
              "historylength"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
      | (?P<name>`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "order", "group", "by", "asc",
             "desc", "starts_with", "true", "false"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # str | num | op | name | kw | end
    text: str
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class ListFilter:
    """A parsed list query: which runs match, and in what order to list them."""

    matches: Predicate
    order_key: str | None = None  # a system attribute name (lower-case); None: newest first
    descending: bool = True
    group_by_status: bool = False  # GROUP BY ExecutionStatus (count only)

    def sort(self, infos: list[wire.WorkflowExecutionInfo]) -> None:
        """Order ``infos`` in place: ORDER BY if given, else newest start first."""
        if self.order_key is None:
            infos.sort(key=lambda i: (-i.start_time, i.workflow_id, i.run_id))
            return
        getter = _SYSTEM[self.order_key][1]
        # Runs without the value (an open run's CloseTime) go last either way.
        present = [i for i in infos if getter(i) is not None]
        absent = [i for i in infos if getter(i) is None]
        present.sort(key=lambda i: (i.workflow_id, i.run_id))  # ties: by id, either direction
        present.sort(key=getter, reverse=self.descending)  # stable, also when reversed
        infos[:] = present + absent


def _bad(message: str, pos: int | None = None) -> wire.ShoalError:
    where = f" at position {pos}" if pos is not None else ""
    return wire.ShoalError(
        wire.Code.INVALID_ARGUMENT, f"invalid list query{where}: {message}", position=pos
    )


def _tokenize(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN.match(query, pos)
        if m is None:
            start = len(query) - len(query[pos:].lstrip())
            raise _bad(f"unexpected character {query[start]!r}", start)
        kind = m.lastgroup or ""
        text = m.group(kind)
        start = m.start(kind)
        if kind == "str":
            body = text[1:-1]
            value: Any = re.sub(r"\\(.)|''", lambda g: g.group(1) or "'", body)
        elif kind == "num":
            value = float(text) if any(c in text for c in ".eE") else int(text)
        elif kind == "name" and text.startswith("`"):
            value = text[1:-1]
        elif kind == "name" and text.lower() in _KEYWORDS:
            kind, value = "kw", text.lower()
        else:
            value = text
        toks.append(_Tok(kind, text, value, start))
        pos = m.end()
    toks.append(_Tok("end", "", None, len(query)))
    return toks


class _Parser:
    def __init__(self, query: str) -> None:
        self.toks = _tokenize(query)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept_kw(self, *words: str) -> bool:
        tok = self.peek()
        if tok.kind == "kw" and tok.value in words:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            tok = self.peek()
            raise _bad(f"expected {word.upper()}, found {_describe(tok)}", tok.pos)

    def expect_op(self, op: str) -> None:
        tok = self.next()
        if tok.kind != "op" or tok.value != op:
            raise _bad(f"expected {op!r}, found {_describe(tok)}", tok.pos)

    # --- grammar ---------------------------------------------------------------------

    def query(self) -> ListFilter:
        matches: Predicate = lambda _i: True  # noqa: E731 - an empty filter lists everything
        if not (self.peek().kind == "end" or self.peek().value in ("order", "group")):
            matches = self.expr()
        order_key, descending = None, True
        if self.accept_kw("order"):
            self.expect_kw("by")
            tok = self.next()
            if tok.kind != "name" or tok.value.lower() not in _ORDERABLE:
                names = ", ".join(sorted(_canonical(n) for n in _ORDERABLE))
                raise _bad(f"ORDER BY takes one of {names}; found {_describe(tok)}", tok.pos)
            order_key = tok.value.lower()
            descending = not self.accept_kw("asc")
            if descending:
                self.accept_kw("desc")
        group_by_status = False
        if self.accept_kw("group"):
            self.expect_kw("by")
            tok = self.next()
            if tok.kind != "name" or tok.value.lower() != "executionstatus":
                raise _bad(f"GROUP BY takes ExecutionStatus only; found {_describe(tok)}",
                           tok.pos)
            group_by_status = True
        tok = self.peek()
        if tok.kind != "end":
            raise _bad(f"unexpected {_describe(tok)}; expected AND, OR or the end", tok.pos)
        return ListFilter(matches=matches, order_key=order_key, descending=descending,
                          group_by_status=group_by_status)

    def expr(self) -> Predicate:
        return self._joined("or", self.and_expr, any)

    def and_expr(self) -> Predicate:
        return self._joined("and", self.unary, all)

    def _joined(self, word: str, operand: Callable[[], Predicate],
                combine: Callable[[Iterable[bool]], bool]) -> Predicate:
        """``operand (word operand)*``, combined with ``any`` (OR) or ``all`` (AND)."""
        parts = [operand()]
        while self.accept_kw(word):
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        return lambda i: combine(p(i) for p in parts)

    def unary(self) -> Predicate:
        if self.accept_kw("not"):
            inner = self.unary()
            return lambda i: not inner(i)
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(":
            self.next()
            inner = self.expr()
            self.expect_op(")")
            return inner
        return self.predicate()

    def predicate(self) -> Predicate:
        tok = self.next()
        if tok.kind != "name":
            raise _bad(f"expected an attribute name, found {_describe(tok)}", tok.pos)
        attr = _Attribute.named(tok.value)
        op = self.peek()
        if op.kind == "op" and op.value in ("=", "!=", "<>", "<", "<=", ">", ">="):
            self.next()
            value = attr.literal(self.value())
            return attr.compare(op.value, value)
        negate = self.accept_kw("not")
        if self.accept_kw("in"):
            self.expect_op("(")
            values = [attr.literal(self.value())]
            while self.peek().kind == "op" and self.peek().value == ",":
                self.next()
                values.append(attr.literal(self.value()))
            self.expect_op(")")
            pred = attr.one_of(values)
        elif self.accept_kw("between"):
            low = attr.literal(self.value())
            self.expect_kw("and")
            high = attr.literal(self.value())
            ge, le = attr.compare(">=", low), attr.compare("<=", high)
            pred = lambda i: ge(i) and le(i)  # noqa: E731
        elif not negate and self.accept_kw("is"):
            is_not = self.accept_kw("not")
            self.expect_kw("null")
            return (lambda i: attr.get(i) is not None) if is_not else (
                lambda i: attr.get(i) is None)
        elif not negate and self.accept_kw("starts_with"):
            prefix = self.value()
            if not isinstance(prefix.value, str):
                raise _bad("STARTS_WITH takes a string", prefix.pos)
            return attr.starts_with(prefix.value)
        else:
            found = self.peek()
            raise _bad(
                f"expected an operator (=, !=, <, <=, >, >=, IN, BETWEEN, IS, STARTS_WITH) "
                f"after {tok.text}, found {_describe(found)}", found.pos)
        if negate:
            return lambda i: attr.get(i) is not None and not pred(i)
        return pred

    def value(self) -> _Tok:
        tok = self.next()
        if tok.kind in ("str", "num"):
            return tok
        if tok.kind == "kw" and tok.value in ("true", "false"):
            return _Tok("bool", tok.text, tok.value == "true", tok.pos)
        raise _bad(f"expected a value ('text', a number, true or false), found {_describe(tok)}",
                   tok.pos)


@dataclass(frozen=True, slots=True)
class _Attribute:
    name: str
    kind: str  # str | status | time | int | custom
    get: Callable[[wire.WorkflowExecutionInfo], Any]

    @classmethod
    def named(cls, name: str) -> _Attribute:
        system = _SYSTEM.get(name.lower())
        if system is not None:
            return cls(name, system[0], system[1])
        return cls(name, "custom", lambda i: _custom_value(i, name))

    def literal(self, tok: _Tok) -> Any:
        """The literal as this attribute's values compare: statuses, instants, numbers."""
        v = tok.value
        if self.kind == "str":
            if not isinstance(v, str):
                raise _bad(f"{self.name} takes a string such as 'x'", tok.pos)
            return v
        if self.kind == "status":
            if isinstance(v, str):
                status = _STATUS_NAMES.get(v.replace("_", "").lower())
                if status is not None:
                    return status
            if isinstance(v, int) and not isinstance(v, bool) and v in _STATUS_NUMBERS:
                return wire.WorkflowExecutionStatus(v)
            names = ", ".join(f"'{_canonical_status(s)}'" for s in wire.WorkflowExecutionStatus)
            raise _bad(f"ExecutionStatus is one of {names}; found {tok.text}", tok.pos)
        if self.kind == "time":
            instant = _instant(v)
            if instant is None:
                raise _bad(f"{self.name} takes an ISO-8601 time such as "
                           f"'2026-11-29T10:00:00Z'; found {tok.text}", tok.pos)
            return instant
        if self.kind == "int":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _bad(f"{self.name} takes a number; found {tok.text}", tok.pos)
            return v
        return v

    def compare(self, op: str, literal: Any) -> Predicate:
        test = _COMPARE[op]

        def pred(info: wire.WorkflowExecutionInfo) -> bool:
            value = self.get(info)
            if value is None:
                return False
            if isinstance(value, list):  # a keyword list: any item
                if op in ("!=", "<>"):
                    return all(_cmp(test, item, literal) for item in value)
                return any(_cmp(test, item, literal) for item in value)
            return _cmp(test, value, literal)

        return pred

    def one_of(self, literals: list[Any]) -> Predicate:
        tests = [self.compare("=", lit) for lit in literals]
        return lambda i: any(t(i) for t in tests)

    def starts_with(self, prefix: str) -> Predicate:
        def pred(info: wire.WorkflowExecutionInfo) -> bool:
            value = self.get(info)
            items = value if isinstance(value, list) else [value]
            return any(isinstance(v, str) and v.startswith(prefix) for v in items)

        return pred


_STATUS_NUMBERS = {int(s) for s in wire.WorkflowExecutionStatus}

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _cmp(test: Callable[[Any, Any], bool], value: Any, literal: Any) -> bool:
    """Compare a stored value with a literal; values of different kinds never match."""
    if isinstance(value, bool) or isinstance(literal, bool):
        return isinstance(value, bool) and isinstance(literal, bool) and test(value, literal)
    if isinstance(value, (int, float)) and isinstance(literal, (int, float)):
        return test(value, literal)
    if isinstance(value, datetime.datetime) or (
        isinstance(value, str) and isinstance(literal, str) and _looks_like_time(value)
        and _looks_like_time(literal)
    ):
        a, b = _instant(value), _instant(literal)
        return a is not None and b is not None and test(a, b)
    if isinstance(value, str) and isinstance(literal, str):
        return test(value, literal)
    return False


_TIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


def _looks_like_time(text: str) -> bool:
    return bool(_TIME_SHAPE.match(text))


def _instant(value: Any) -> float | None:
    """Seconds since the epoch for an ISO-8601 string or datetime (UTC when no zone)."""
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, str) and _looks_like_time(value):
        try:
            dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _custom_value(info: wire.WorkflowExecutionInfo, name: str) -> Any:
    raw = info.search_attributes.get(name)
    if raw is None:
        return None
    try:
        return cbor2.loads(raw)
    except Exception:  # noqa: BLE001 - a value the filter cannot read is NULL to it
        return None


def _canonical(lower: str) -> str:
    names = {"workflowid": "WorkflowId", "runid": "RunId", "workflowtype": "WorkflowType",
             "taskqueue": "TaskQueue", "executionstatus": "ExecutionStatus",
             "starttime": "StartTime", "closetime": "CloseTime",
             "executiontime": "ExecutionTime", "historylength": "HistoryLength"}
    return names[lower]


def _canonical_status(status: wire.WorkflowExecutionStatus) -> str:
    return "".join(part.capitalize() for part in status.name.split("_"))


def _describe(tok: _Tok) -> str:
    return "the end of the query" if tok.kind == "end" else repr(tok.text)


def parse(query: str) -> ListFilter:
    """Parse a list query.

    Raises:
        wire.ShoalError: INVALID_ARGUMENT naming the position and what was expected.
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise _bad(f"the query is {len(query)} characters; the limit is {MAX_QUERY_LENGTH}")
    return _Parser(query).query()


def status_name(status: wire.WorkflowExecutionStatus) -> str:
    """The name a query uses for ``status`` (``ContinuedAsNew``)."""
    return _canonical_status(status)
