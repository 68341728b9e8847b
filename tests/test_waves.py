"""Creation waves, critical path, expected `pulumi up` time and destroy order (`mlp.waves`): pure tests on small
hand-built plans with a hand-built duration table, the shipped duration table, and the shipped prod stack."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from mlplatform.mlp.planner import Plan, PlannedResource, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from mlplatform.mlp.waves import (
    BASES,
    DEFAULT_PARALLELISM,
    DurationTable,
    Figure,
    creation_waves,
    critical_path,
    destroy_wall_time,
    destroy_waves,
    duration_text,
    expected_wall_time,
    layer_graph,
    load_durations,
    order_report,
    render_text,
    to_json,
    types_with_default,
)

# -- hand-built plans and table -------------------------------------------------------------------------------

SLOW, MEDIUM, FAST = "test:index:Slow", "test:index:Medium", "test:index:Fast"
MINUTE = "test:index:Minute"


def _figure(seconds: float, basis: str = "estimate") -> dict[str, Any]:
    return {"seconds": seconds, "basis": basis, "source": {"title": "test figure"}}


def _table_data(types: dict[str, Any]) -> dict[str, Any]:
    return {
        "_about": {"date": "2026-12-04", "how_to_read": "test table"},
        "parallelism": {
            "per_cpu": 4,
            "assumed_cpus": 8,
            "since": "3.100.0",
            "basis": "documented",
            "source": {"title": "test", "url": "https://example.invalid/"},
        },
        "default": {"create": _figure(5), "delete": _figure(5)},
        "types": types,
    }


def _table() -> DurationTable:
    """Slow 120 s / 50 s, Medium 60 s / 20 s, Fast 30 s / 10 s, Minute 60 s / 60 s; anything else 5 s / 5 s."""
    return DurationTable.from_dict(
        _table_data(
            {
                SLOW: {"create": _figure(120), "delete": _figure(50)},
                MEDIUM: {"create": _figure(60), "delete": _figure(20)},
                FAST: {"create": _figure(30), "delete": _figure(10)},
                MINUTE: {"create": _figure(60), "delete": _figure(60)},
            }
        )
    )


TABLE = _table()


def res(
    name: str,
    type_: str = FAST,
    *,
    layer: str = "cloud",
    depends_on: tuple[str, ...] = (),
    refs: dict[str, list[str]] | None = None,
    parent: str | None = None,
    provider: str | None = None,
    custom: bool = True,
    inputs: dict[str, Any] | None = None,
    **options: Any,
) -> PlannedResource:
    return PlannedResource(
        type=type_,
        name=name,
        parent=parent,
        provider=provider,
        inputs=inputs or {},
        options={"dependsOn": list(depends_on), **options},
        custom=custom,
        references=refs or {},
        layer=layer,
    )


def plan_of(*resources: PlannedResource, layers: tuple[str, ...] = ("cloud", "cluster")) -> Plan:
    return Plan(project="test", stack="t", resources=tuple(resources), layers=layers)


# A -> B -> C (by reference, dependsOn, provider), D after A, E alone:
#   A (Slow 120 s), B (Medium 60 s), C (Fast 30 s), D (Fast 30 s), E (Fast 30 s)
DIAMOND = plan_of(
    res("A", SLOW),
    res("B", MEDIUM, refs={"input": ["A"]}),
    res("C", FAST, depends_on=("B",)),
    res("D", FAST, depends_on=("A",)),
    res("E", FAST),
)


# -- creation waves -------------------------------------------------------------------------------------------


def test_creation_waves_are_the_topological_levels() -> None:
    plan = plan_of(
        res("prov", "pulumi:providers:aws"),
        res("A", provider="prov"),
        res("B", refs={"x": ["A"]}),
        res("C", depends_on=("A",)),
        res("D", refs={"x": ["B"]}, depends_on=("C",)),
        res("E"),
        res("F", depends_on=("A", "D")),  # its longest chain, not its nearest dependency, sets its wave
    )
    assert creation_waves(plan, "cloud") == [["prov", "E"], ["A"], ["B", "C"], ["D"], ["F"]]


def test_components_are_not_operations_and_a_dependency_on_one_stands_for_its_custom_descendants() -> None:
    plan = plan_of(
        res("comp", "test:index:Component", custom=False),
        res("X", parent="comp"),
        res("Y", parent="comp"),
        res("sub", "test:index:Component", custom=False, parent="comp"),
        res("Z", parent="sub"),
        res("W", parent="X"),  # a child of a custom resource waits for its parent, but is not part of `comp`
        res("R", refs={"input": ["comp"]}),
    )
    graph = layer_graph(plan, "cloud")
    assert graph.dependencies["R"] == {"X", "Y", "Z"}
    assert graph.dependencies["W"] == {"X"}
    assert creation_waves(plan, "cloud") == [["X", "Y", "Z"], ["W", "R"]]


def test_dependencies_on_other_layers_and_unknown_names_are_ignored() -> None:
    plan = plan_of(
        res("vpc", SLOW),
        res("svc-cloud", "test:index:Component", custom=False),  # a component of the same name in each layer
        res("role", parent="svc-cloud"),
        res("svc-cloud", "test:index:Component", layer="cluster", custom=False),
        res("deploy", layer="cluster", parent="svc-cloud"),
        res("ns", layer="cluster", depends_on=("vpc", "ghost")),
        res("app", layer="cluster", refs={"x": ["svc-cloud", "ns"]}),
    )
    assert creation_waves(plan, "cluster") == [["deploy", "ns"], ["app"]]
    assert layer_graph(plan, "cluster").dependencies["app"] == {"deploy", "ns"}
    assert creation_waves(plan, "cloud") == [["vpc", "role"]]


def test_a_dependency_cycle_is_reported() -> None:
    plan = plan_of(res("A", depends_on=("B",)), res("B", depends_on=("A",)), res("C"))
    with pytest.raises(ValueError, match=r"dependency cycle in the cloud layer among: A, B"):
        creation_waves(plan, "cloud")


# -- critical path and wall time ------------------------------------------------------------------------------


def test_a_chain_is_the_critical_path_with_its_summed_duration() -> None:
    assert critical_path(DIAMOND, "cloud", TABLE) == (["A", "B", "C"], 210.0)  # 120 + 60 + 30
    assert expected_wall_time(DIAMOND, "cloud", table=TABLE) == 210.0


def test_the_parallelism_limit_serializes_a_wide_wave_in_batches() -> None:
    plan = plan_of(*(res(f"r{i:02d}", MINUTE) for i in range(40)))
    assert creation_waves(plan, "cloud") == [[f"r{i:02d}" for i in range(40)]]
    assert critical_path(plan, "cloud", TABLE)[1] == 60.0
    assert expected_wall_time(plan, "cloud", 32, TABLE) == 120.0  # 32, then 8
    assert expected_wall_time(plan, "cloud", table=TABLE) == 120.0
    assert expected_wall_time(plan, "cloud", 40, TABLE) == 60.0
    assert expected_wall_time(plan, "cloud", 1, TABLE) == 2400.0
    with pytest.raises(ValueError, match="parallelism must be at least 1"):
        expected_wall_time(plan, "cloud", 0, TABLE)


def test_a_limited_schedule_starts_ready_resources_in_plan_order() -> None:
    # One slot: A 0-120; then B and D are ready, B first (plan order) 120-180; then C (ready, and before D and E
    # in plan order) 180-210, D 210-240, E 240-270.
    assert expected_wall_time(DIAMOND, "cloud", 1, TABLE) == 270.0
    # Two slots: A 0-120 beside E 0-30; B 120-180 beside D 120-150; C 180-210.
    assert expected_wall_time(DIAMOND, "cloud", 2, TABLE) == 210.0


def test_a_service_finishes_once_the_pods_it_selects_are_ready() -> None:
    labels = {"app": "web"}
    deployment_inputs = {"metadata": {"namespace": "web"}, "spec": {"template": {"metadata": {"labels": labels}}}}
    plan = plan_of(
        res("ns", layer="cluster"),
        res("web", SLOW, layer="cluster", depends_on=("ns",), inputs=deployment_inputs),
        res(
            "web-svc",
            "kubernetes:core/v1:Service",
            layer="cluster",
            depends_on=("ns",),
            inputs={"metadata": {"namespace": "web"}, "spec": {"selector": labels, "type": "ClusterIP"}},
        ),
        res(
            "other-svc",  # another namespace: not a pod of `web`
            "kubernetes:core/v1:Service",
            layer="cluster",
            inputs={"metadata": {"namespace": "other"}, "spec": {"selector": labels}},
        ),
        res("ingress", layer="cluster", refs={"rules": ["web-svc"]}),
    )
    deployment = dataclasses.replace(plan.get("web"), type="kubernetes:apps/v1:Deployment")
    plan = dataclasses.replace(plan, resources=tuple(deployment if r.name == "web" else r for r in plan.resources))
    graph = layer_graph(plan, "cluster")
    assert graph.pod_waits == {"web-svc": {"web"}}
    # the engine's order does not show it ...
    assert creation_waves(plan, "cluster") == [["ns", "other-svc"], ["web", "web-svc"], ["ingress"]]
    # ... the timing does: ns 5 s, the Deployment 5 s (default), the Service 10 s, the ingress 30 s
    table = load_durations()
    path, seconds = critical_path(plan, "cluster", table)
    assert path[-3:] == ["web", "web-svc", "ingress"]
    deployment_s = table.create_seconds(plan.get("web"))
    assert seconds == 5 + deployment_s + 10 + 5
    report = order_report(plan, table=table)
    assert report.layers[1].pod_waits == (("web-svc", "web"),)
    assert "web (1m) ~> web-svc (10s)" in render_text(report)


def test_a_workload_that_waits_for_its_service_is_not_waited_for_by_it() -> None:
    labels = {"app": "web"}
    plan = plan_of(
        res(
            "svc",
            "kubernetes:core/v1:Service",
            layer="cluster",
            inputs={"spec": {"selector": labels}},
        ),
        res(
            "web",
            "kubernetes:apps/v1:Deployment",
            layer="cluster",
            refs={"env": ["svc"]},
            inputs={"spec": {"template": {"metadata": {"labels": labels}}}},
        ),
    )
    assert layer_graph(plan, "cluster").pod_waits == {}
    assert critical_path(plan, "cluster")[0] == ["svc", "web"]


# -- destroy --------------------------------------------------------------------------------------------------


def test_destroy_waves_are_the_reverse_order() -> None:
    # A <- B <- C, A <- D, E alone: C, D and E go first, then B, then A.
    assert destroy_waves(DIAMOND, "cloud") == [["C", "D", "E"], ["B"], ["A"]]
    # deletes: C 10, then B 20, then A 50 = 80 (D 10 and E 10 beside them)
    assert destroy_wall_time(DIAMOND, "cloud", table=TABLE) == 80.0


def test_protected_and_retained_resources_are_flagged_and_a_retained_one_takes_no_delete_time() -> None:
    plan = plan_of(
        res("key", SLOW, protect=True, retainOnDelete=True),
        res("bucket", MEDIUM, refs={"kms": ["key"]}, protect=True),
        res("queue", FAST, layer="cluster"),
    )
    report = order_report(plan, table=TABLE)
    cloud, cluster = report.layers
    assert cloud.protected == ("key", "bucket")
    assert cloud.retained == ("key",)
    assert cluster.protected == cluster.retained == ()
    assert [[s.name for s in wave] for wave in cloud.destroy_waves] == [["bucket"], ["key"]]
    assert [[s.seconds for s in wave] for wave in cloud.destroy_waves] == [[20.0], [0.0]]
    assert cloud.destroy_seconds == 20.0
    assert report.destroy_seconds == 30.0  # the cluster layer's queue (10 s) first, then the cloud layer
    text = render_text(report)
    assert "protected (pulumi destroy stops at these until `pulumi state unprotect`): key, bucket" in text
    assert "retainOnDelete (dropped from the state, left in the account and still billed): key" in text


def test_the_report_adds_up_the_layers_in_order() -> None:
    plan = plan_of(
        *DIAMOND.resources,
        res("ns", FAST, layer="cluster"),
        res("chart", SLOW, layer="cluster", depends_on=("ns",)),
    )
    report = order_report(plan, parallelism=1, table=TABLE)
    assert [layer.layer for layer in report.layers] == ["cloud", "cluster"]
    assert [layer.up_seconds for layer in report.layers] == [270.0, 150.0]
    assert report.up_seconds == 420.0
    assert [s.name for s in report.layers[1].critical_path] == ["ns", "chart"]
    body = to_json(report)
    assert json.loads(json.dumps(body)) == body
    assert body["up_seconds"] == 420.0
    assert body["layers"][0]["critical_path"][0] == {"name": "A", "type": SLOW, "seconds": 120.0}
    text = render_text(report)
    assert "pulumi up:      ~7 min in all (cloud ~5 min, then cluster ~3 min)" in text  # 270 s, 150 s: half up
    assert "critical path, 3m30s: A (2m) -> B (1m) -> C (30s)" in text
    assert "not a measurement" in text


def test_a_plan_without_layers_is_one_layer() -> None:
    single = (res("A", SLOW, layer=""), res("B", FAST, layer="", depends_on=("A",)))
    plan = Plan(project="p", stack="s", resources=single)
    report = order_report(plan, table=TABLE)
    assert [layer.layer for layer in report.layers] == [""]
    assert report.up_seconds == 150.0
    assert "== plan layer: create (2 resources, 2 waves)" in render_text(report)


def test_types_without_an_entry_get_the_default_and_are_named() -> None:
    plan = plan_of(
        res("p", "pulumi:providers:kubernetes"),
        res("ref", "pulumi:pulumi:StackReference"),
        res("x", "test:index:Unknown"),
        res("c", "test:index:Component", custom=False),
    )
    assert types_with_default(plan, TABLE) == ["test:index:Unknown"]
    assert [TABLE.create_seconds(r) for r in plan.resources] == [0.0, 0.0, 5.0, 0.0]
    text = render_text(order_report(plan, table=TABLE))
    assert "Types without an entry (default 5s create, 5s delete, estimate): test:index:Unknown" in text


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.4, "59s"), (60, "1m"), (150, "2m30s"), (1233, "20m33s")])
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


# -- the shipped duration table -------------------------------------------------------------------------------


def _all_figures(table: DurationTable) -> list[tuple[str, Figure]]:
    out = []
    for token, entry in table.types.items():
        out += [(f"{token} create", entry.create), (f"{token} delete", entry.delete)]
        for v in entry.variants:
            out += [(f"{token} [{v.id}] {op}", f) for op, f in (("create", v.create), ("delete", v.delete)) if f]
    return out + [("default create", table.default.create), ("default delete", table.default.delete)]


def test_every_figure_has_a_basis_and_a_source() -> None:
    table = load_durations()
    figures = _all_figures(table)
    assert len(figures) > 150
    for where, fig in figures:
        assert fig.basis in BASES, where
        assert fig.source.title.strip(), where
        assert fig.basis == "estimate" or fig.source.url.startswith("https://"), where
        assert fig.source.quote or fig.note, where  # what the source says, or how the figure was read from it
    assert table.default.create.basis == table.default.delete.basis == "estimate"
    for token, entry in table.types.items():
        if entry.timeout:
            assert entry.timeout.source.title and entry.timeout.source.url.startswith("https://"), token


def test_the_table_is_dated_and_records_the_default_parallelism() -> None:
    table = load_durations()
    assert table.date == "2026-12-04"
    assert table.parallelism.per_cpu == 4
    assert table.parallelism.since == "3.100.0"
    assert table.parallelism.limit() == DEFAULT_PARALLELISM == 32
    assert table.parallelism.limit(2) == 8
    assert "GOMAXPROCS" in table.parallelism.source.quote


def test_a_figure_with_a_basis_outside_the_allowed_set_or_without_its_source_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"types\.x\.create\.basis: 'guess' is not one of measured, documented"):
        DurationTable.from_dict(_table_data({"x": {"create": _figure(5, "guess"), "delete": _figure(5)}}))
    with pytest.raises(ValueError, match=r"types\.x\.create\.source\.url: a measured figure needs the address"):
        DurationTable.from_dict(_table_data({"x": {"create": _figure(5, "measured"), "delete": _figure(5)}}))
    with pytest.raises(ValueError, match=r"types\.x\.delete\.source: expected an object with a title"):
        unsourced = {"seconds": 5, "basis": "estimate"}
        DurationTable.from_dict(_table_data({"x": {"create": _figure(5), "delete": unsourced}}))


def _resource(type_: str, **inputs: Any) -> PlannedResource:
    return res("r", type_, inputs=inputs)


def test_the_eks_control_plane_takes_eight_to_sixteen_minutes() -> None:
    seconds = load_durations().create_seconds(_resource("aws:eks/cluster:Cluster"))
    assert 8 * 60 <= seconds <= 16 * 60
    assert seconds == 600.0


def test_rds_figures_follow_multi_az_and_the_final_snapshot() -> None:
    table = load_durations()
    rds = "aws:rds/instance:Instance"
    single = _resource(rds, multiAz=False, skipFinalSnapshot=True)
    multi = _resource(rds, multiAz=True, skipFinalSnapshot=True)
    assert table.create_seconds(multi) > table.create_seconds(single)
    assert (table.create_seconds(single), table.create_seconds(multi)) == (360.0, 1200.0)
    assert (table.delete_seconds(single), table.delete_seconds(multi)) == (150.0, 270.0)
    # a final snapshot (skipFinalSnapshot false, or left out: the provider's default) adds 225 s to the delete
    assert table.delete_seconds(_resource(rds, multiAz=True, skipFinalSnapshot=False)) == 270.0 + 225.0
    assert table.delete_seconds(_resource(rds)) == 150.0 + 225.0
    keys = [u.key for u in table.estimate(_resource(rds, multiAz=True), "delete").used]
    assert keys == [f"{rds} [multi-az]", f"{rds} [final-snapshot]"]


@pytest.mark.parametrize(
    ("type_", "inputs", "create"),
    [
        ("aws:eks/addon:Addon", {"addonName": "kube-proxy"}, 60.0),
        ("aws:eks/addon:Addon", {"addonName": "vpc-cni"}, 60.0),
        ("aws:eks/addon:Addon", {"addonName": "coredns"}, 120.0),
        ("aws:eks/addon:Addon", {"addonName": "aws-ebs-csi-driver"}, 120.0),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", {"vpcEndpointType": "Gateway"}, 10.0),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", {"vpcEndpointType": "Interface"}, 60.0),
        ("aws:ec2/vpcEndpoint:VpcEndpoint", {"vpcEndpointType": "Interface", "privateDnsEnabled": True}, 270.0),
        ("kubernetes:helm.sh/v3:Release", {"chart": "keda"}, 60.0),
        ("kubernetes:helm.sh/v3:Release", {"chart": "kube-prometheus-stack"}, 210.0),
        ("kubernetes:helm.sh/v3:Release", {"chart": "oci://public.ecr.aws/karpenter/karpenter-crd"}, 15.0),
        ("kubernetes:helm.sh/v3:Release", {"chart": "oci://quay.io/jetstack/charts/cert-manager"}, 90.0),
        ("kubernetes:karpenter.sh/v1:NodePool", {}, 2.0),  # a custom resource: not awaited
        ("pulumi:pulumi:StackReference", {}, 0.0),
        ("pulumi:providers:aws", {}, 0.0),
    ],
)
def test_refinements_by_inputs(type_: str, inputs: dict[str, Any], create: float) -> None:
    assert load_durations().create_seconds(_resource(type_, **inputs)) == create


def _deployment(image: str, gpus: int = 0) -> PlannedResource:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {"memory": "1Gi"}
    container = {"image": image, "resources": {"limits": limits}}
    return _resource("kubernetes:apps/v1:Deployment", spec={"template": {"spec": {"containers": [container]}}})


def test_a_deployment_is_awaited_and_a_vllm_one_on_a_gpu_node_takes_longest() -> None:
    table = load_durations()
    assert table.create_seconds(_deployment("ghcr.io/mlflow/mlflow:v3")) == 60.0
    assert table.create_seconds(_deployment("registry.k8s.io/pause:3.10", gpus=1)) == 60.0 + 150.0
    assert table.create_seconds(_deployment("vllm/vllm-openai:v0.33.0", gpus=4)) == 60.0 + 150.0 + 300.0
    vllm = table.estimate(_deployment("vllm/vllm-openai:v0.33.0", gpus=4), "create")
    assert [u.figure.adds for u in vllm.used] == [False, True, True]


# -- the shipped prod stack -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod(project: Project) -> Plan:
    return plan_stack(load_stack(project, "prod"))


def test_every_resource_is_in_exactly_one_creation_wave_of_its_layer(prod: Plan) -> None:
    assert prod.layers == ("cloud", "cluster")
    for layer in prod.layers:
        counts = Counter(name for wave in creation_waves(prod, layer) for name in wave)
        assert counts == Counter(r.name for r in prod.in_layer(layer) if r.custom), layer
        assert set(counts.values()) == {1}
        # and in exactly one deletion wave
        assert sorted(n for wave in destroy_waves(prod, layer) for n in wave) == sorted(counts)


def test_the_cluster_layer_waits_for_nothing_of_the_cloud_layer(prod: Plan) -> None:
    cloud = {r.name for r in prod.in_layer("cloud")}
    cluster_names = {n for wave in creation_waves(prod, "cluster") for n in wave}
    assert cluster_names
    assert not cluster_names & cloud
    graph = layer_graph(prod, "cluster")
    assert not {d for deps in graph.dependencies.values() for d in deps} & cloud
    # it reads the cloud layer through its StackReference, a zero-second read in the first wave
    assert "organization/ml-platform/prod" in creation_waves(prod, "cluster")[0]


def test_the_multi_az_database_is_the_critical_path_of_the_prod_cloud_layer(prod: Plan) -> None:
    table = load_durations()
    path, seconds = critical_path(prod, "cloud", table)
    assert "mlflow-db" in path
    assert seconds == sum(table.create_seconds(prod.get(n)) for n in path)
    assert seconds >= 1200 + 20  # the Multi-AZ create and the VPC before it
    eks = table.create_seconds(prod.get("cluster-eks"))
    assert expected_wall_time(prod, "cloud", table=table) >= max(eks, seconds)
    # without a limit, the schedule takes exactly as long as its critical path
    assert expected_wall_time(prod, "cloud", 10_000, table) == seconds


def test_with_a_single_az_database_the_eks_control_plane_dominates(prod: Plan) -> None:
    db = prod.get("mlflow-db")
    single = dataclasses.replace(db, inputs={**db.inputs, "multiAz": False})
    plan = dataclasses.replace(prod, resources=tuple(single if r is db else r for r in prod.resources))
    table = load_durations()
    path, seconds = critical_path(plan, "cloud", table)
    assert "cluster-eks" in path
    assert path.index("network-vpc") < path.index("cluster-eks") < path.index("cluster-system")
    eks = table.create_seconds(prod.get("cluster-eks"))
    assert eks <= seconds <= expected_wall_time(plan, "cloud", table=table)


def test_the_prod_report(prod: Plan) -> None:
    report = order_report(prod)
    assert types_with_default(prod) == []  # every type of the shipped stack has a figure of its own
    cloud, cluster = report.layers
    assert "mlflow-db" in cloud.protected and "mlflow-db" in cloud.retained
    # what a destroy keeps is protected too, but for the rotation schedule of RDS's own secret: Pulumi forgets it
    # rather than cancel a rotation it does not own, and it may be changed or removed like any setting
    assert set(cloud.retained) - set(cloud.protected) == {"mlflow-db-password-rotation"}
    assert ("serving-vllm-assistant-service", "serving-vllm-assistant-deployment") in cluster.pod_waits
    assert report.up_seconds == cloud.up_seconds + cluster.up_seconds
    assert cloud.up_seconds >= load_durations().create_seconds(prod.get("cluster-eks"))
    text = render_text(report)
    assert max(len(line) for line in text.splitlines()) <= 120
    assert text.index("== cloud layer: create") < text.index("== cluster layer: create")
    assert text.index("== cluster layer: destroy") < text.index("== cloud layer: destroy")
    assert "mlflow-db (20m)" in text
    body = to_json(report)
    assert json.loads(json.dumps(body)) == body
    assert {f["key"] for f in body["figures"]} >= {"aws:eks/cluster:Cluster", "aws:rds/instance:Instance [multi-az]"}
