"""Buffered queries ride on the next workflow task a worker starts, are answered by its
completion, and go back to waiting when that task ends without an answer."""

from __future__ import annotations

from shoal import wire
from shoal.node.shard.queries import Queries

RUN = ("default", "wf", "run-1")
Q = wire.WorkflowQuery(query_type="total")


class _NoMatching:
    def add(self, task) -> bool:  # buffered queries never go through matching
        raise AssertionError("a buffered query was dispatched")


def test_a_buffered_query_is_carried_once_and_answered_by_that_task() -> None:
    queries = Queries(_NoMatching(), "n1")
    qid, pending = queries.buffer(RUN, Q)
    assert queries.attach(RUN, (5, 1)) == {qid: Q}
    assert queries.attach(RUN, (5, 1)) == {}  # already riding on a task
    queries.settle(RUN, (5, 1), {qid: wire.QueryAnswer(result=[b"3"])})
    assert pending.done.is_set() and pending.result == [b"3"] and pending.error is None


def test_a_task_that_did_not_answer_leaves_the_query_for_the_next_one() -> None:
    queries = Queries(_NoMatching(), "n1")
    qid, pending = queries.buffer(RUN, Q)
    queries.attach(RUN, (5, 1))
    queries.settle(RUN, (5, 1), {})
    assert not pending.done.is_set() and pending.attached_to is None
    assert queries.attach(RUN, (9, 1)) == {qid: Q}


def test_an_answer_from_another_task_or_run_is_ignored() -> None:
    queries = Queries(_NoMatching(), "n1")
    qid, pending = queries.buffer(RUN, Q)
    queries.attach(RUN, (5, 1))
    queries.settle(RUN, (5, 2), {qid: wire.QueryAnswer(result=[b"x"])})  # a later attempt
    queries.settle(("default", "wf", "run-2"), (5, 1), {qid: wire.QueryAnswer(result=[b"x"])})
    assert not pending.done.is_set() and pending.attached_to == (5, 1)


def test_a_failed_or_timed_out_task_releases_its_queries() -> None:
    queries = Queries(_NoMatching(), "n1")
    _, pending = queries.buffer(RUN, Q)
    queries.attach(RUN, (5, 1))
    queries.detach_unless(RUN, (5, 1))  # still the started task: kept
    assert pending.attached_to == (5, 1)
    queries.detach_unless(RUN, None)  # no task running any more
    assert pending.attached_to is None


def test_unbuffered_queries_are_not_carried() -> None:
    queries = Queries(_NoMatching(), "n1")
    qid, _ = queries.buffer(RUN, Q)
    queries.unbuffer(RUN, qid)
    assert queries.attach(RUN, (5, 1)) == {}
