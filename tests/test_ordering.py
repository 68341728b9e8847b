"""The deploy-order check (`mlp.ordering`): each kind of violation seeded in a small program or component, reported
with both resource names and the input path, and the wired version reporting nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

from mlplatform.mlp.mocks import PlanContext
from mlplatform.mlp.ordering import (
    EXEMPTIONS,
    ExemptionUse,
    Violation,
    check_order,
    creation_violations,
    deletion_violations,
    exemptions_used,
    occurs_as_token,
    render,
)
from mlplatform.mlp.planner import Plan, build_layered_plan, build_plan, run_function, run_program
from tests.conftest import plan_component

PROGRAMS = Path(__file__).parent / "data" / "programs"
LOG_GROUP_REASON = EXEMPTIONS[("aws:cloudwatch/logGroup:LogGroup", "name", "aws:eks/cluster:Cluster")].reason


def _plan_program(name: str, *, wired: bool) -> Plan:
    config = {"test:wired": "true" if wired else "false"}
    records = run_program(PROGRAMS / name / "__main__.py", "test", "t", config, PlanContext(region="eu-west-1"))
    return build_plan("test", "t", records)


def _cells(violations: list[Violation]) -> list[tuple[str, str, str, str]]:
    return [(v.resource, v.path, v.target, v.value) for v in violations]


# -- token boundaries -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("mlp-dev", True),
        ("/aws/eks/mlp-dev/cluster", True),
        ("arn:aws:eks:us-east-1:123456789012:cluster/mlp-dev", True),
        ('{"aws:RequestTag/eks-cluster-name": "mlp-dev"}', True),
        ("mlp-dev.example.internal", True),  # a dot separates tokens (DNS names built from a physical name)
        ("mlp-dev-karpenter", False),
        ("alias/mlp-dev-eks", False),
        ("xmlp-dev", False),
        ("mlp-dev_logs", False),
        ("mlp-development", False),
    ],
)
def test_an_identifier_is_found_only_as_a_whole_token(text: str, found: bool) -> None:
    assert occurs_as_token("mlp-dev", text) is found


# -- AWS identifiers given as strings -------------------------------------------------------------------------


def test_strings_naming_the_cluster_and_a_bucket_arn_are_reported_with_path_and_fix() -> None:
    plan = _plan_program("ordering_cluster", wired=False)
    violations = creation_violations(plan)
    assert _cells(violations) == [
        ("app-pod-identity", "clusterName", "cluster", "c-demo"),
        ("app-read", "policy/Statement[0]/Resource[0]", "data", "arn:aws:s3:::c-demo-data"),
        ("app-read", "policy/Statement[0]/Resource[1]", "data", "arn:aws:s3:::c-demo-data/*"),
    ]
    assert [v.message() for v in violations] == [
        'app-pod-identity.clusterName = "c-demo" names cluster (aws:eks/cluster:Cluster) but has no dependency '
        "path to it: pass the Output (cluster.name), not a string",
        'app-read.policy/Statement[0]/Resource[0] = "arn:aws:s3:::c-demo-data" names data (aws:s3/bucket:Bucket) '
        "but has no dependency path to it: pass the Output (data.arn), not a string",
        'app-read.policy/Statement[0]/Resource[1] = "arn:aws:s3:::c-demo-data/*" names data (aws:s3/bucket:Bucket) '
        "but has no dependency path to it: build the value from the Output (data.arn) with Output.format or "
        "apply, not from a string",
    ]
    # the bucket sub-resource carries the bucket's name as an input from the bucket: it is not named by the ARN
    assert all(v.alternatives == () for v in violations)


def test_the_wired_program_reports_nothing_and_names_its_exemption() -> None:
    plan = _plan_program("ordering_cluster", wired=True)
    report = check_order(plan)
    assert report.creation == () and report.deletion == ()
    # the queue named c-demo-karpenter is not a reference to cluster c-demo: only the exempted log group is left
    assert report.exemptions == (
        ExemptionUse("cluster-logs", "name", "cluster", "aws:eks/cluster:Cluster", LOG_GROUP_REASON),
    )
    assert render(report) == [
        "Deploy order: 10 references checked for creation order, 0 finalized objects for deletion order: "
        "0 creation and 0 deletion violations (1 exempted reference; --verbose lists it)"
    ]
    assert render(report, verbose=True)[1:] == [
        f"  exempt: cluster-logs.name names cluster (aws:eks/cluster:Cluster): {LOG_GROUP_REASON}"
    ]


def _eks_cluster(name: str = "c-demo", opts: pulumi.ResourceOptions | None = None) -> aws.eks.Cluster:
    return aws.eks.Cluster(
        "cluster",
        name=name,
        role_arn="arn:aws:iam::123456789012:role/eks-cluster",
        vpc_config={"subnet_ids": ["subnet-0aaaa1111", "subnet-0bbbb2222"]},
        opts=opts,
    )


def test_a_queue_whose_name_starts_with_the_cluster_name_does_not_name_it() -> None:
    def build() -> None:
        _eks_cluster()
        aws.sqs.Queue("interruption", name="c-demo-karpenter")
        aws.sqs.Queue("named-like-the-cluster", name="c-demo")  # the same string as the cluster's name

    violations = creation_violations(plan_component(build))
    # only the queue whose whole name is the cluster's is reported (and the cluster, named by the queue's name)
    assert sorted((v.resource, v.target) for v in violations) == [
        ("cluster", "named-like-the-cluster"),
        ("named-like-the-cluster", "cluster"),
    ]


def test_the_log_group_exemption_needs_the_cluster_to_depend_on_the_log_group() -> None:
    def build(ordered: bool) -> None:
        logs = aws.cloudwatch.LogGroup("cluster-logs", name="/aws/eks/c-demo/cluster", retention_in_days=7)
        _eks_cluster(opts=pulumi.ResourceOptions(depends_on=[logs] if ordered else None))

    ordered = plan_component(lambda: build(True))
    assert creation_violations(ordered) == []
    assert [(u.resource, u.path, u.target) for u in exemptions_used(ordered)] == [("cluster-logs", "name", "cluster")]

    unordered = plan_component(lambda: build(False))
    (violation,) = creation_violations(unordered)
    assert (violation.resource, violation.path, violation.target, violation.reverse) == (
        "cluster-logs",
        "name",
        "cluster",
        True,
    )
    assert violation.message() == (
        'cluster-logs.name = "/aws/eks/c-demo/cluster" names cluster (aws:eks/cluster:Cluster), which must be '
        f"created after it ({LOG_GROUP_REASON}), but cluster has no dependency path to cluster-logs: add "
        "depends_on=[cluster-logs] to cluster"
    )
    assert exemptions_used(unordered) == []


def test_another_log_group_named_after_the_cluster_is_an_ordinary_reference() -> None:
    """The control-plane exemption covers `/aws/eks/<cluster>/cluster` only: any other group whose name holds the
    cluster's must come after the cluster (e.g. by taking the name from the cluster's Output), never before it."""

    def build(after_cluster: bool) -> None:
        cluster = _eks_cluster()
        name: pulumi.Input[str] = cluster.name.apply(lambda c: f"/{c}/containers/platform")
        aws.cloudwatch.LogGroup("container-logs", name=name if after_cluster else "/c-demo/containers/platform")

    assert creation_violations(plan_component(lambda: build(True))) == []
    (violation,) = creation_violations(plan_component(lambda: build(False)))
    assert (violation.resource, violation.path, violation.target, violation.reverse) == (
        "container-logs",
        "name",
        "cluster",
        False,
    )


def test_a_value_naming_several_resources_needs_a_path_to_one_of_them() -> None:
    def build(depend: bool) -> None:
        aws.iam.Role("shared-role", name="c-shared-name", assume_role_policy="{}")
        queue = aws.sqs.Queue("shared-queue", name="c-shared-name")
        aws.ssm.Parameter(
            "pointer",
            type="String",
            insecure_value="c-shared-name",
            opts=pulumi.ResourceOptions(depends_on=[queue] if depend else None),
        )

    violations = [v for v in creation_violations(plan_component(lambda: build(False))) if v.resource == "pointer"]
    assert [(v.path, v.target, v.alternatives) for v in violations] == [
        ("insecureValue", "shared-queue", ("shared-role",)),
        ("insecureValue", "shared-role", ("shared-queue",)),
    ]
    assert (
        violations[0]
        .message()
        .endswith(
            "(the value also names shared-role; a path to one of them will do): pass the Output "
            "(shared-queue.name), not a string"
        )
    )
    satisfied = [v for v in creation_violations(plan_component(lambda: build(True))) if v.resource == "pointer"]
    assert satisfied == []


def test_descriptions_tags_and_dict_keys_are_not_references() -> None:
    def build() -> None:
        _eks_cluster()
        aws.sqs.Queue(
            "labelled",
            tags={"cluster": "c-demo"},
            policy=json.dumps({"Statement": [{"Condition": {"StringEquals": {"aws:ResourceTag/c-demo": "owned"}}}]}),
        )
        aws.iam.Role("described", description="used by c-demo", assume_role_policy="{}")

    assert creation_violations(plan_component(build)) == []


# -- layers ---------------------------------------------------------------------------------------------------


def _layered(cloud: Callable[[], None], cluster: Callable[[], None]) -> Plan:
    runs = [
        (layer, run_function(build, "ml-platform", "t", {}, PlanContext(region="us-east-1")))
        for layer, build in (("cloud", cloud), ("cluster", cluster))
    ]
    return build_layered_plan("ml-platform", "t", runs)


def _pod_identity(name: str, provider: aws.Provider) -> None:
    aws.eks.PodIdentityAssociation(
        name,
        cluster_name="c-demo",
        namespace="app",
        service_account="app",
        role_arn="arn:aws:iam::123456789012:role/app",
        opts=pulumi.ResourceOptions(provider=provider),
    )


def test_a_later_layer_may_name_an_earlier_layers_resource_by_string() -> None:
    def cloud() -> None:
        _eks_cluster(opts=pulumi.ResourceOptions(provider=aws.Provider("aws-cloud", region="us-east-1")))

    def cluster() -> None:
        _pod_identity("app-pod-identity", aws.Provider("aws-cluster", region="us-east-1"))

    plan = _layered(cloud, cluster)
    assert plan.layers == ("cloud", "cluster")
    report = check_order(plan)
    assert report.creation == () and report.references_checked == 1


def test_an_earlier_layer_naming_a_later_layers_resource_is_reported() -> None:
    def cloud() -> None:
        _pod_identity("app-pod-identity", aws.Provider("aws-cloud", region="us-east-1"))

    def cluster() -> None:
        _eks_cluster(opts=pulumi.ResourceOptions(provider=aws.Provider("aws-cluster", region="us-east-1")))

    (violation,) = creation_violations(_layered(cloud, cluster))
    assert (violation.resource, violation.path, violation.target) == ("app-pod-identity", "clusterName", "cluster")
    assert violation.message() == (
        'app-pod-identity.clusterName = "c-demo" names cluster (aws:eks/cluster:Cluster) of the cluster layer, '
        "which is deployed after (and destroyed before) the cloud layer: a layer may only name resources of the "
        "layers before it"
    )


# -- Kubernetes objects ---------------------------------------------------------------------------------------


def _provider() -> k8s.Provider:
    return k8s.Provider("k8s", kubeconfig="{}")


def _deployment(
    namespace: pulumi.Input[str],
    service_account: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.Deployment:
    pod: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.29"}]}
    if service_account is not None:
        pod["serviceAccountName"] = service_account
    return k8s.apps.v1.Deployment(
        "web",
        metadata={"name": "web", "namespace": namespace},
        spec={
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
        },
        opts=opts,
    )


@pytest.mark.parametrize("wired", [False, True])
def test_a_workload_in_a_planned_namespace_depends_on_it(wired: bool) -> None:
    def build() -> None:
        provider = _provider()
        namespace = k8s.core.v1.Namespace(
            "team-a", metadata={"name": "team-a"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        _deployment(
            "team-a", None, pulumi.ResourceOptions(provider=provider, depends_on=[namespace] if wired else None)
        )

    violations = creation_violations(plan_component(build))
    if wired:
        assert violations == []
        return
    assert _cells(violations) == [("web", "metadata.namespace", "team-a", "team-a")]
    assert violations[0].message() == (
        'web.metadata.namespace = "team-a" names team-a (kubernetes:core/v1:Namespace) but has no dependency path '
        "to it: pass the Output (team-a.metadata.name) or add depends_on=[team-a]"
    )


@pytest.mark.parametrize("wired", [False, True])
def test_a_workload_depends_on_its_service_account(wired: bool) -> None:
    def build() -> None:
        opts = pulumi.ResourceOptions(provider=_provider())
        namespace = k8s.core.v1.Namespace("team-a", metadata={"name": "team-a"}, opts=opts)
        account = k8s.core.v1.ServiceAccount(
            "runner", metadata={"name": "runner", "namespace": namespace.metadata.name}, opts=opts
        )
        _deployment(namespace.metadata.name, account.metadata.name if wired else "runner", opts)

    violations = creation_violations(plan_component(build))
    expected = [] if wired else [("web", "spec.template.spec.serviceAccountName", "runner", "runner")]
    assert _cells(violations) == expected


def test_kubernetes_references_by_name_follow_each_rule() -> None:
    def build() -> None:
        opts = pulumi.ResourceOptions(provider=_provider())
        meta = {"namespace": "apps"}  # no namespace is planned: only the named objects are checked
        k8s.core.v1.ServiceAccount("sa", metadata={"name": "worker", **meta}, opts=opts)
        k8s.core.v1.Secret("token", metadata={"name": "api-token", **meta}, string_data={"t": "x"}, opts=opts)
        k8s.core.v1.ConfigMap("settings", metadata={"name": "settings", **meta}, data={"a": "b"}, opts=opts)
        k8s.storage.v1.StorageClass("gp3", metadata={"name": "gp3"}, provisioner="ebs.csi.aws.com", opts=opts)
        k8s.core.v1.ConfigMap("elsewhere", metadata={"name": "settings", "namespace": "other"}, opts=opts)
        k8s.apiextensions.CustomResource(
            "nodeclass", api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass", metadata={"name": "gpu"}, opts=opts
        )
        k8s.apiextensions.CustomResource(
            "nodepool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": "gpu"},
            spec={
                "template": {
                    "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}}
                }
            },
            opts=opts,
        )
        k8s.core.v1.PersistentVolumeClaim(
            "cache",
            metadata={"name": "cache", **meta},
            spec={
                "storageClassName": "gp3",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
            opts=opts,
        )
        k8s.apps.v1.Deployment(
            "api",
            metadata={"name": "api", **meta},
            spec={
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {
                        "volumes": [{"name": "t", "secret": {"secretName": "api-token"}}],
                        "containers": [
                            {
                                "name": "api",
                                "image": "nginx:1.29",
                                "envFrom": [{"configMapRef": {"name": "settings"}}],
                            }
                        ],
                    },
                },
            },
            opts=opts,
        )
        k8s.apiextensions.CustomResource(
            "scaler",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata={"name": "api", **meta},
            spec={"scaleTargetRef": {"name": "api"}, "triggers": []},
            opts=opts,
        )
        k8s.rbac.v1.RoleBinding(
            "bind",
            metadata={"name": "worker", **meta},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            subjects=[{"kind": "ServiceAccount", "name": "worker", "namespace": "apps"}],
            opts=opts,
        )

    assert sorted((v.resource, v.path, v.target) for v in creation_violations(plan_component(build))) == [
        ("api", "spec.template.spec.containers[0].envFrom[0].configMapRef.name", "settings"),
        ("api", "spec.template.spec.volumes[0].secret.secretName", "token"),
        ("bind", "subjects[0].name", "sa"),
        ("cache", "spec.storageClassName", "gp3"),
        ("nodepool", "spec.template.spec.nodeClassRef.name", "nodeclass"),
        ("scaler", "spec.scaleTargetRef.name", "api"),
    ]


# -- deletion -------------------------------------------------------------------------------------------------


def _karpenter_release(opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        "karpenter",
        name="karpenter",
        chart="oci://public.ecr.aws/karpenter/karpenter",
        version="1.14.1",
        namespace="karpenter",
        values={"serviceAccount": {"create": True, "name": "karpenter"}},
        opts=opts,
    )


def _nodepool(opts: pulumi.ResourceOptions) -> None:
    k8s.apiextensions.CustomResource(
        "gpu-nodepool",
        api_version="karpenter.sh/v1",
        kind="NodePool",
        metadata={"name": "gpu"},
        spec={
            "template": {
                "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"}}
            }
        },
        opts=opts,
    )


@pytest.mark.parametrize("wired", [False, True])
def test_a_nodepool_depends_on_the_karpenter_release(wired: bool) -> None:
    def build() -> None:
        provider = _provider()
        release = _karpenter_release(pulumi.ResourceOptions(provider=provider))
        _nodepool(pulumi.ResourceOptions(provider=provider, depends_on=[release] if wired else None))

    report = check_order(plan_component(build))
    assert report.creation == () and report.finalized_checked == 1
    if wired:
        assert report.deletion == ()
        return
    (violation,) = report.deletion
    assert (violation.kind, violation.resource, violation.target, violation.path) == (
        "delete",
        "gpu-nodepool",
        "karpenter",
        "metadata.finalizers",
    )
    assert violation.message() == (
        "gpu-nodepool (kubernetes:karpenter.sh/v1:NodePool) is finalized by karpenter.sh/termination (Karpenter "
        "drains the pool's nodes and terminates their EC2 instances) but has no dependency path to karpenter "
        "(kubernetes:helm.sh/v3:Release), the Helm release of the karpenter chart: destroy may remove that first "
        "and leave the object Terminating; add depends_on=[karpenter]"
    )


def _karpenter_identity() -> tuple[aws.eks.PodIdentityAssociation, aws.iam.RolePolicy]:
    role = aws.iam.Role("karpenter-role", assume_role_policy="{}")
    association = aws.eks.PodIdentityAssociation(
        "karpenter-pod-identity",
        cluster_name="c-demo",
        namespace="karpenter",
        service_account="karpenter",
        role_arn=role.arn,
    )
    policy = aws.iam.RolePolicy("karpenter-policy", role=role.id, policy='{"Statement": []}')
    return association, policy


@pytest.mark.parametrize("wired", [False, True])
def test_a_nodepool_outlives_the_controllers_pod_identity_and_policies(wired: bool) -> None:
    def build() -> None:
        provider = _provider()
        association, policy = _karpenter_identity()
        release = _karpenter_release(pulumi.ResourceOptions(provider=provider, depends_on=[association]))
        needs: list[pulumi.Resource] = [release, policy] if wired else [release]
        _nodepool(pulumi.ResourceOptions(provider=provider, depends_on=needs))

    violations = deletion_violations(plan_component(build))
    expected = (
        [] if wired else [("gpu-nodepool", "karpenter-policy", "a policy of the controller's role karpenter-role")]
    )
    assert [(v.resource, v.target, v.attribute) for v in violations] == expected


def test_a_controller_in_an_earlier_layer_or_absent_is_no_deletion_violation() -> None:
    def cloud() -> None:
        _karpenter_identity()

    def cluster() -> None:
        provider = _provider()
        release = _karpenter_release(pulumi.ResourceOptions(provider=provider))
        _nodepool(pulumi.ResourceOptions(provider=provider, depends_on=[release]))

    report = check_order(_layered(cloud, cluster))
    assert report.deletion == () and report.finalized_checked == 1

    # Karpenter installed by someone else: nothing in the plan to order against, and nothing checked
    alone = check_order(plan_component(lambda: _nodepool(pulumi.ResourceOptions(provider=_provider()))))
    assert alone.deletion == () and alone.finalized_checked == 0


# -- the shipped stacks and the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_have_no_order_violations(plans: dict[str, Plan], stack: str) -> None:
    report = check_order(plans[stack])
    assert [v.message() for v in (*report.creation, *report.deletion)] == []
    # Many references are checked: every Pod Identity association, access entry, policy document, NodeClass...
    assert report.references_checked > 300
    # Every finalized object is checked against its controller (NodePools, NodeClasses, the models' GatewayClass;
    # prod also the Ingress, and the NodePool and NodeClass of its reserved training pool, which Karpenter provisions;
    # dev also its registry-served InferenceService).
    assert report.finalized_checked == {"dev": 8, "staging": 7, "prod": 10}[stack]


def _mlp(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from mlplatform.mlp.cli import main

    monkeypatch.setattr("sys.argv", ["mlp", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_mlp_plan_fails_on_a_violation_naming_both_resources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = str(Path(__file__).parent / "data" / "projects" / "ordering")
    assert _mlp(monkeypatch, "plan", "broken", "-C", project, "-f", "json") == 1
    err = capsys.readouterr().err
    assert "3 creation and 0 deletion violations" in err
    assert (
        '  create: app-pod-identity.clusterName = "c-demo" names cluster (aws:eks/cluster:Cluster) but has no '
        "dependency path to it: pass the Output (cluster.name), not a string"
    ) in err.splitlines()
    assert _mlp(monkeypatch, "plan", "wired", "-C", project, "-f", "json", "--verbose") == 0
    err = capsys.readouterr().err
    assert "0 creation and 0 deletion violations" in err
    assert f"  exempt: cluster-logs.name names cluster (aws:eks/cluster:Cluster): {LOG_GROUP_REASON}" in err


def test_mlp_validate_reports_the_order_of_a_shipped_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mlp(monkeypatch, "validate", "prod", "-f", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["valid"] is True
    assert body["order"]["ok"] is True and body["order"]["violations"] == []
    assert body["order"]["finalized_checked"] == 10  # as in test_shipped_stacks_have_no_order_violations
