"""Tier 6, what the engine does with the program: a first `pulumi preview` (every computed output unknown) plans the
same resources without crashing, no resource is created inside an `apply`, and every input the program sets
reaches the plan (nothing silently dropped because a mock left an output empty)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi import _types

from mlplatform.mlp.mocks import UNKNOWN
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.schema_gate import check_plan
from mlplatform.mlp.stackfile import Project, load_stack
from tests.conftest import STACKS, plan_component

_IN_APPLY: contextvars.ContextVar[bool] = contextvars.ContextVar("in_apply", default=False)


class Recorder:
    """Hooks the SDK while a program runs: what each custom resource was given, and resources created in an
    `apply` callback (which a preview never runs, so they would appear only after the first `up`)."""

    def __init__(self) -> None:
        self.passed: dict[tuple[str, str], set[str]] = {}
        self.created_in_apply: list[str] = []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    original_init = pulumi.CustomResource.__init__
    original_component_init = pulumi.ComponentResource.__init__
    original_apply = pulumi.Output.apply

    def custom_init(self: Any, t: str, name: str, props: Any = None, opts: Any = None, *a: Any, **kw: Any) -> None:
        if _IN_APPLY.get():
            rec.created_in_apply.append(name)
        rec.passed[(t, name)] = _passed_keys(type(self), props)
        original_init(self, t, name, props, opts, *a, **kw)

    def component_init(self: Any, t: str, name: str, *a: Any, **kw: Any) -> None:
        if _IN_APPLY.get():
            rec.created_in_apply.append(name)
        original_component_init(self, t, name, *a, **kw)

    def apply(self: Any, func: Callable[[Any], Any], run_with_unknowns: bool = False) -> Any:
        def flagged(value: Any) -> Any:
            token = _IN_APPLY.set(True)
            try:
                return func(value)
            finally:
                _IN_APPLY.reset(token)

        return original_apply(self, flagged, run_with_unknowns)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", custom_init)
    monkeypatch.setattr(pulumi.ComponentResource, "__init__", component_init)
    monkeypatch.setattr(pulumi.Output, "apply", apply)
    yield rec


def _passed_keys(resource_cls: type, props: Any) -> set[str]:
    """The engine names of the inputs a program gave a resource (generated SDKs keep unset inputs and output-only
    properties as None in the props object)."""
    raw = props if isinstance(props, dict) else dict(getattr(props, "__dict__", {}) or {})
    names = _types.resource_py_to_pulumi_names(resource_cls)
    return {names.get(k) or _camel(k) for k, v in raw.items() if v is not None and not k.startswith("_")}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _missing_inputs(plan: Plan, rec: Recorder) -> dict[str, list[str]]:
    missing: dict[str, list[str]] = {}
    for r in plan.resources:
        if not r.custom or r.type.startswith("pulumi:"):
            continue
        passed = rec.passed.get((r.type, r.name), set())
        lost = sorted(k for k in passed if k not in r.inputs)
        if lost:
            missing[r.name] = lost
    return missing


@pytest.mark.parametrize("stack", STACKS)
def test_every_input_the_program_sets_is_in_the_plan(project: Project, recorder: Recorder, stack: str) -> None:
    plan = plan_stack(load_stack(project, stack))
    assert len(recorder.passed) > 100
    assert _missing_inputs(plan, recorder) == {}
    # the input that used to be dropped: the database's parameter group (named by AWS from a prefix)
    if stack == "prod":
        assert plan.get("mlflow-db").inputs["parameterGroupName"].startswith("mlp-prod-mlflow-")


def test_a_dropped_input_is_reported(recorder: Recorder) -> None:
    """The check above can fail: an input whose value resolves to nothing never reaches the engine."""

    def program() -> None:
        provider = aws.Provider("aws", region="us-east-1")
        queue = aws.sqs.Queue("q", opts=pulumi.ResourceOptions(provider=provider))
        # `redrivePolicy` is not an output the mocks fill in: the value is empty, the input vanishes.
        aws.sqs.QueuePolicy(
            "p", queue_url=queue.url, policy=queue.redrive_policy, opts=pulumi.ResourceOptions(provider=provider)
        )

    plan = plan_component(program)
    assert _missing_inputs(plan, recorder) == {"p": ["policy"]}


@pytest.mark.parametrize("stack", STACKS)
def test_first_preview_plans_the_same_resources_and_creates_none_in_an_apply(
    project: Project, plans: dict[str, Plan], recorder: Recorder, stack: str
) -> None:
    preview = plan_stack(load_stack(project, stack), preview=True)
    assert {(r.layer, r.name, r.type) for r in preview.resources} == {
        (r.layer, r.name, r.type) for r in plans[stack].resources
    }
    assert recorder.created_in_apply == []
    # Every input the program gives is there, known or marked unknown (none dropped because a value was empty),
    # and the whole preview checks against the providers' schemas, unknown values accepted.
    assert _missing_inputs(preview, recorder) == {}
    assert [str(e) for e in check_plan(preview).errors] == []
    # A nested output the provider computes is unknown, not empty: the runner's ingress rule still names the
    # cluster security group (an Output of the cluster's vpcConfig).
    if stack != "dev":
        assert preview.get("runner-to-api").inputs["securityGroupId"] == UNKNOWN
    # Computed values really are unknown in this run: the EKS cluster's role ARN is not known before the role
    # exists, while values from config are.
    eks = preview.get("cluster-eks")
    assert eks.inputs["roleArn"] == UNKNOWN
    assert eks.inputs["version"] == "1.35"
    # The cluster layer is previewed once the cloud layer exists: its provider's kubeconfig (from the
    # StackReference) is known, so the provider configures and checks every object against the API server.
    assert preview.get("k8s").inputs["kubeconfig"] == "[secret]"
    unknown_in_cluster_layer = [
        r.name for r in preview.in_layer("cluster") if r.type.startswith("kubernetes:") and _has_unknown(r.inputs)
    ]
    # Nothing a Kubernetes object is given waits for a computed value (the Grafana password is a secret, shown
    # redacted either way): the whole layer is checkable by the API server in its first preview.
    assert unknown_in_cluster_layer == []


def test_a_resource_created_inside_an_apply_is_caught(recorder: Recorder) -> None:
    def program() -> None:
        provider = aws.Provider("aws", region="us-east-1")
        queue = aws.sqs.Queue("q", opts=pulumi.ResourceOptions(provider=provider))
        queue.arn.apply(lambda _arn: aws.sqs.Queue("made-in-apply", opts=pulumi.ResourceOptions(provider=provider)))

    plan_component(program)
    assert recorder.created_in_apply == ["made-in-apply"]


def _has_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False
