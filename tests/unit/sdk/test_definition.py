"""Workflow definitions, decorators, and the shared common types."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shoal import common as public_common
from shoal import wire
from shoal import workflow as public_workflow
from shoal.sdk import workflow
from shoal.sdk.common import RetryPolicy, WorkflowIDReusePolicy, type_hints_from_func
from shoal.sdk.workflow import WorkflowDefinition, _resolve_workflow_ref


@workflow.defn(name="Renamed", sandboxed=False)
class Sample:
    @workflow.run
    async def run(self, a: int, b: str) -> list[str]:
        return [b] * a

    @workflow.signal
    def poke(self, n: int) -> None:
        pass

    @workflow.query(name="state")
    def get_state(self) -> str:
        return ""

    @workflow.update
    async def change(self, v: str) -> str:
        return v


@workflow.defn
class WithInit:
    @workflow.init
    def __init__(self, name: str) -> None:
        self.name = name

    @workflow.run
    async def run(self, name: str) -> str:
        return self.name


def test_definition_reads_name_run_method_and_types():
    d = WorkflowDefinition.from_class(Sample)
    assert (d.name, d.cls, d.run_fn) == ("Renamed", Sample, Sample.run)
    assert d.arg_types == [int, str] and d.ret_type == list[str]
    assert not d.init_takes_args and WorkflowDefinition.from_class(WithInit).init_takes_args


def test_handlers_are_recorded_by_name():
    d = WorkflowDefinition.from_class(Sample)
    assert set(d.signals) == {"poke"} and d.signals["poke"].arg_types == [int]
    assert set(d.queries) == {"state"} and set(d.updates) == {"change"}


def test_undecorated_class_is_refused_clearly():
    class Plain:
        async def run(self) -> None:
            pass

    with pytest.raises(TypeError, match="decorate it with @workflow.defn"):
        WorkflowDefinition.from_class(Plain)


def test_subclass_of_a_workflow_is_not_itself_a_definition():
    class Sub(Sample):
        pass

    with pytest.raises(TypeError):
        WorkflowDefinition.from_class(Sub)


def test_class_without_run_method_is_refused():
    with pytest.raises(ValueError, match="no @workflow.run"):
        @workflow.defn
        class NoRun:
            pass


def test_sync_run_method_is_refused():
    with pytest.raises(ValueError, match="async def"):
        @workflow.run
        def run(self) -> None:
            pass


def test_client_side_reference_resolves_from_run_method_class_or_name():
    assert _resolve_workflow_ref(Sample.run) == ("Renamed", list[str])
    assert _resolve_workflow_ref(Sample) == ("Renamed", list[str])
    assert _resolve_workflow_ref("Other") == ("Other", None)
    with pytest.raises(TypeError):
        _resolve_workflow_ref(lambda: None)


def test_public_module_is_the_sdk_module():
    assert public_workflow.defn is workflow.defn
    assert public_workflow.execute_activity is workflow.execute_activity
    assert public_common.RetryPolicy is RetryPolicy


def test_retry_policy_converts_to_and_from_wire():
    policy = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=3.0,
                         maximum_interval=timedelta(seconds=60), maximum_attempts=4,
                         non_retryable_error_types=["Bad"])
    w = policy.to_wire()
    assert w == wire.RetryPolicy(initial_interval_s=2.0, backoff_coefficient=3.0,
                                 maximum_interval_s=60.0, maximum_attempts=4,
                                 non_retryable_error_types=["Bad"])
    assert RetryPolicy.from_wire(w) == policy
    assert RetryPolicy().to_wire() == wire.RetryPolicy()


@pytest.mark.parametrize("kwargs", [
    {"backoff_coefficient": 0.5}, {"maximum_attempts": -1},
    {"initial_interval": timedelta(seconds=5), "maximum_interval": timedelta(seconds=1)},
])
def test_invalid_retry_policy_is_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_id_reuse_policy_matches_the_wire_numbers():
    for p in WorkflowIDReusePolicy:
        assert p.to_wire().name == p.name


def test_type_hints_skip_self_and_report_untyped():
    assert type_hints_from_func(Sample.run) == ([int, str], list[str])

    def untyped(a, b: int):
        return a

    assert type_hints_from_func(untyped) == (None, None)


def test_update_validator_decorator_exists_for_temporalio_code():
    @workflow.defn
    class WithValidator:
        @workflow.run
        async def run(self) -> None:
            pass

        @workflow.update
        async def set_value(self, v: int) -> None:
            pass

        @set_value.validator
        def check_value(self, v: int) -> None:
            pass

    d = WorkflowDefinition.from_class(WithValidator)
    assert d.updates["set_value"].fn.__shoal_update_validator__ is WithValidator.check_value
