"""The platform's own namespaces are default-deny, with exactly the connections their components make or accept
(`infra.platform_policies`), and no namespace but MLflow's reaches its database (the Admin-tier guard): the
builders' exact rules, Grafana's namespaced RBAC, and a reachability table evaluated cell by cell over the
NetworkPolicies and ClusterNetworkPolicies of the planned stacks (`tests.network_policy`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import pytest

from mlplatform.infra import platform_policies as pp
from mlplatform.infra.observability.alerting import AlertingSpec
from mlplatform.infra.observability.documents import MonitoringSpec, kube_prometheus_stack_values
from mlplatform.infra.serving.routing import proxy_selector
from mlplatform.mlp import rbac
from mlplatform.mlp.isolation import cluster_network_policies, network_policies
from mlplatform.mlp.planner import Plan
from tests.network_policy import Destination, Pod, connection_allowed, connection_decision, ingress_decision

STACKS = ("dev", "staging", "prod")
INTERNET = "198.51.100.7"  # TEST-NET-2: a public address no rule names
TEAM = "research"


# --- the builders -----------------------------------------------------------------------------------------------


def test_default_deny_selects_every_pod_both_ways_and_allows_nothing() -> None:
    assert pp.default_deny("keda", {"team": "platform"}) == {
        "metadata": {"name": "default-deny", "namespace": "keda", "labels": {"team": "platform"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def test_a_webhook_admits_the_private_subnets_on_its_port_only() -> None:
    addresses = pp.ClusterAddresses(private_ranges=("10.10.0.0/18", "10.10.64.0/18"))
    webhook = next(p for p in pp.kserve_policies(addresses, {}) if p["metadata"]["name"] == "allow-webhook")
    assert webhook["spec"] == {
        "podSelector": {"matchLabels": {"control-plane": "kserve-controller-manager"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "10.10.0.0/18"}}, {"ipBlock": {"cidr": "10.10.64.0/18"}}],
                "ports": [{"protocol": "TCP", "port": 9443}],
            }
        ],
    }


def test_aws_apis_are_public_https_the_interface_endpoints_and_the_pod_identity_agent() -> None:
    addresses = pp.ClusterAddresses(interface_endpoints=("10.30.12.101/32",))
    assert pp.aws_apis("mlflow", {}, addresses, {"matchLabels": {"app.kubernetes.io/name": "mlflow"}})["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            },
            {"to": [{"ipBlock": {"cidr": "10.30.12.101/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
            {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]},
        ],
    }


def test_the_private_ranges_are_the_planned_private_subnets_or_rfc1918_for_an_adopted_vpc() -> None:
    assert pp.private_ranges("10.10.0.0/16", 3) == ("10.10.0.0/18", "10.10.64.0/18", "10.10.128.0/18")
    assert pp.private_ranges(None, 3) == ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def test_the_database_guard_denies_5432_to_the_private_subnets_for_every_namespace_but_mlflow() -> None:
    guard = pp.database_guard(pp.ClusterAddresses(private_ranges=("10.10.0.0/18",)), {"team": "platform"})
    assert guard == {
        "apiVersion": "networking.k8s.aws/v1alpha1",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "mlplatform-database-guard", "labels": {"team": "platform"}},
        "spec": {
            "tier": "Admin",
            "priority": 20,
            "subject": {
                "namespaces": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["mlflow"]}
                    ]
                }
            },
            "egress": [
                {
                    "name": "mlflow-database",
                    "action": "Deny",
                    "to": [{"networks": ["10.10.0.0/18"]}],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": 5432}}],
                }
            ],
        },
    }
    # After the team guards (priority 10), whose first rule passes a team's own namespace to its policies.
    assert guard["spec"]["priority"] > pp.TENANT_GUARD_PRIORITY


def test_the_guard_beats_a_namespace_policy_that_opens_the_database() -> None:
    """A namespace admin's NetworkPolicy allowing all egress does not reach the database: Admin tier first."""
    guard = pp.database_guard(pp.ClusterAddresses(private_ranges=("10.10.0.0/18",)), {})
    open_all = {
        "metadata": {"name": "open", "namespace": "serving"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    }
    db = Destination(5432, address="10.10.0.10")
    assert not connection_allowed([open_all], [guard], Pod("serving"), db)
    assert connection_allowed([open_all], [guard], Pod("serving"), Destination(5433, address="10.10.0.10"))
    assert connection_allowed([], [guard], Pod("mlflow"), db)


# --- Grafana ----------------------------------------------------------------------------------------------------


def _grafana_values() -> dict[str, Any]:
    alerting = AlertingSpec(
        label="mlp-test",
        region="us-east-1",
        sns_severities=(),
        sns_send_resolved=True,
        webhook_secret=None,
        webhook_severities=(),
        webhook_send_resolved=True,
        group_by=("alertname",),
        group_wait="30s",
        group_interval="5m",
        repeat_interval="4h",
    )
    spec = MonitoringSpec(retention="15d", storage_gib=50, grafana=True)
    values: dict[str, Any] = kube_prometheus_stack_values(spec, alerting=alerting, topic_arn=None, aws_cli_image="x")
    return dict(values["grafana"])


def test_grafana_rbac_is_namespaced_and_its_sidecars_search_monitoring_only() -> None:
    """grafana chart 12.11.1: `rbac.namespaced` makes a Role in Grafana's namespace instead of a ClusterRole on
    every namespace's ConfigMaps and Secrets (templates/clusterrole.yaml, role.yaml); `searchNamespace` is what the
    sidecars watch (kube-prometheus-stack 88.5.3 sets dashboards to ALL)."""
    grafana = _grafana_values()
    assert grafana["rbac"] == {"namespaced": True}
    assert grafana["sidecar"]["dashboards"]["searchNamespace"] == ["monitoring"]
    assert grafana["sidecar"]["datasources"]["searchNamespace"] == ["monitoring"]
    assert grafana["sidecar"]["datasources"]["alertmanager"] == {"enabled": False}


# --- the planned stacks -----------------------------------------------------------------------------------------


def _namespaces(plan: Plan) -> dict[str, dict[str, str]]:
    return rbac.namespaces(plan)


def _pod(plan: Plan, namespace: str, labels: Mapping[str, str] | None = None) -> Pod:
    return Pod(namespace, dict(labels or {}), dict(_namespaces(plan).get(namespace, {})))


def _private_address(plan: Plan, offset: int = 10) -> str:
    """An address in the stack's first planned private subnet (the control plane's interfaces, nodes, RDS)."""
    subnets = sorted(
        (r for r in plan.of_type("aws:ec2/subnet:Subnet") if "private" in r.name and r.inputs.get("cidrBlock")),
        key=lambda r: r.name,
    )
    return str(ipaddress.ip_network(str(subnets[0].inputs["cidrBlock"])).network_address + offset)


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_the_platform_makes_is_default_deny(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    made = set(_namespaces(plan)) - {"default", "kube-system", "kube-public"}
    deny = {
        p["metadata"]["namespace"]
        for p in network_policies(plan)
        if p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    }
    assert made - deny == set()
    platform = made & set(pp.PLATFORM_NAMESPACES)
    # Every stack installs monitoring, MLflow, serving and the KubeRay operator at least.
    assert {"monitoring", "mlflow", "serving", "kuberay-system"} <= platform


@pytest.mark.parametrize("stack", STACKS)
def test_the_database_guard_is_planned_with_the_private_subnets(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    guards = [p for p in cluster_network_policies(plan) if p["metadata"]["name"] == pp.DATABASE_GUARD]
    assert len(guards) == 1
    subnets = sorted(
        str(r.inputs["cidrBlock"])
        for r in plan.of_type("aws:ec2/subnet:Subnet")
        if "private" in r.name and r.inputs.get("cidrBlock")
    )
    assert sorted(guards[0]["spec"]["egress"][0]["to"][0]["networks"]) == subnets


def _cells(plan: Plan) -> dict[str, tuple[Pod, Destination]]:
    """The cells that matter: name -> (source pod, destination)."""
    ns = _namespaces(plan)
    team = next(n for n, labels in ns.items() if labels.get(rbac.TENANT_LABEL) == TEAM)

    def pod(namespace: str, labels: Mapping[str, str] | None = None) -> Pod:
        return _pod(plan, namespace, labels)

    prometheus = pod("monitoring", pp.PROMETHEUS)
    cells: dict[str, tuple[Pod, Destination]] = {
        "team -> prometheus 9090": (pod(team, {"app": "x"}), Destination(9090, pod=prometheus)),
        "team -> alertmanager 9093": (
            pod(team, {"app": "x"}),
            Destination(9093, pod=pod("monitoring", pp.ALERTMANAGER)),
        ),
        "team -> grafana 3000": (pod(team, {"app": "x"}), Destination(3000, pod=pod("monitoring", pp.GRAFANA))),
        "team -> mlflow 5000": (pod(team, {"app": "x"}), Destination(5000, pod=pod("mlflow", pp.MLFLOW_SELECTOR))),
        "team -> mlflow 5001": (pod(team, {"app": "x"}), Destination(5001, pod=pod("mlflow", pp.MLFLOW_SELECTOR))),
        "team -> vllm 8000": (
            pod(team, {"app": "x"}),
            Destination(8000, pod=pod("serving", {"app.kubernetes.io/name": "vllm"})),
        ),
        "team -> kuberay operator 8080": (pod(team, {"app": "x"}), Destination(8080, pod=pod("kuberay-system", {}))),
        "team -> database": (pod(team, {"app": "x"}), Destination(5432, address=_private_address(plan))),
        "team -> own postgres 5432": (pod(team, {"app": "x"}), Destination(5432, pod=pod(team, {"app": "postgres"}))),
        "mlflow -> database": (pod("mlflow", pp.MLFLOW_SELECTOR), Destination(5432, address=_private_address(plan))),
        "mlflow -> api server": (pod("mlflow", pp.MLFLOW_SELECTOR), Destination(443, address="10.100.0.1")),
        "mlflow -> s3": (pod("mlflow", pp.MLFLOW_SELECTOR), Destination(443, address=INTERNET)),
        "mlflow -> team pod": (pod("mlflow", pp.MLFLOW_SELECTOR), Destination(8080, pod=pod(team, {"app": "x"}))),
        "serving -> database": (
            pod("serving", {"app.kubernetes.io/name": "vllm"}),
            Destination(5432, address=_private_address(plan)),
        ),
        "prometheus -> database": (prometheus, Destination(5432, address=_private_address(plan))),
        "ray -> database": (
            pod("ray", {"ray.io/node-type": "head"}),
            Destination(5432, address=_private_address(plan)),
        ),
        "prometheus -> alertmanager 9093": (prometheus, Destination(9093, pod=pod("monitoring", pp.ALERTMANAGER))),
        "prometheus -> grafana 3000": (prometheus, Destination(3000, pod=pod("monitoring", pp.GRAFANA))),
        "prometheus -> operator 10250": (prometheus, Destination(10250, pod=pod("monitoring", pp.PROMETHEUS_OPERATOR))),
        "prometheus -> kube-state-metrics 8080": (
            prometheus,
            Destination(8080, pod=pod("monitoring", pp.KUBE_STATE_METRICS)),
        ),
        "prometheus -> coredns 9153": (prometheus, Destination(9153, pod=pod("kube-system", pp.KUBE_DNS))),
        "prometheus -> kubelet 10250": (prometheus, Destination(10250, address=_private_address(plan, 20))),
        "prometheus -> node exporter 9100": (prometheus, Destination(9100, address=_private_address(plan, 20))),
        "prometheus -> vllm 8000": (
            prometheus,
            Destination(8000, pod=pod("serving", {"app.kubernetes.io/name": "vllm"})),
        ),
        "prometheus -> predictor 8080": (
            prometheus,
            Destination(8080, pod=pod("serving", {"serving.kserve.io/inferenceservice": "m"})),
        ),
        "prometheus -> ray 8080": (prometheus, Destination(8080, pod=pod("ray", {"mlplatform.io/ray-cluster": "c"}))),
        "prometheus -> team pod 9000": (prometheus, Destination(9000, pod=pod(team, {"app": "x"}))),
        "prometheus -> internet": (prometheus, Destination(443, address=INTERNET)),
        "grafana -> prometheus 9090": (pod("monitoring", pp.GRAFANA), Destination(9090, pod=prometheus)),
        "grafana -> alertmanager 9093": (
            pod("monitoring", pp.GRAFANA),
            Destination(9093, pod=pod("monitoring", pp.ALERTMANAGER)),
        ),
        "grafana -> internet": (pod("monitoring", pp.GRAFANA), Destination(443, address=INTERNET)),
        "alertmanager -> sns": (pod("monitoring", pp.ALERTMANAGER), Destination(443, address=INTERNET)),
        "alertmanager -> team pod": (
            pod("monitoring", pp.ALERTMANAGER),
            Destination(8080, pod=pod(team, {"app": "x"})),
        ),
        "kuberay operator -> ray head 8265": (
            pod("kuberay-system", {}),
            Destination(8265, pod=pod("ray", {"ray.io/node-type": "head"})),
        ),
        "kuberay operator -> internet": (pod("kuberay-system", {}), Destination(443, address=INTERNET)),
        "vllm -> hub": (pod("serving", {"app.kubernetes.io/name": "vllm"}), Destination(443, address=INTERNET)),
        "vllm -> team pod": (
            pod("serving", {"app.kubernetes.io/name": "vllm"}),
            Destination(8080, pod=pod(team, {"app": "x"})),
        ),
        "vllm -> dns": (
            pod("serving", {"app.kubernetes.io/name": "vllm"}),
            Destination(53, "UDP", pod=pod("kube-system", pp.KUBE_DNS)),
        ),
    }
    if "keda" in ns:
        cells["keda operator -> prometheus 9090"] = (pod("keda", pp.KEDA_OPERATOR), Destination(9090, pod=prometheus))
        cells["keda webhooks -> prometheus 9090"] = (pod("keda", pp.KEDA_WEBHOOKS), Destination(9090, pod=prometheus))
    if "dcgm-exporter" in ns:
        cells["prometheus -> dcgm 9400"] = (prometheus, Destination(9400, pod=pod("dcgm-exporter", {})))
    if "karpenter" in ns:
        karpenter = pod("karpenter", {"app.kubernetes.io/name": "karpenter"})
        cells["prometheus -> karpenter 8080"] = (prometheus, Destination(8080, pod=karpenter))
        cells["team -> karpenter 8080"] = (pod(team, {"app": "x"}), Destination(8080, pod=karpenter))
        cells["karpenter -> ec2"] = (karpenter, Destination(443, address=INTERNET))
    if "envoy-gateway-system" in ns:
        proxy = pod("envoy-gateway-system", proxy_selector())
        cells["team -> gateway proxy 10080"] = (pod(team, {"app": "x"}), Destination(10080, pod=proxy))
        cells["gateway proxy -> predictor 8080"] = (
            proxy,
            Destination(8080, pod=pod("serving", {"serving.kserve.io/inferenceservice": "m"})),
        )
        cells["gateway proxy -> vllm 8000"] = (
            proxy,
            Destination(8000, pod=pod("serving", {"app.kubernetes.io/name": "vllm"})),
        )
        cells["gateway proxy -> controller xds"] = (
            proxy,
            Destination(18000, pod=pod("envoy-gateway-system", pp.ENVOY_GATEWAY)),
        )
        cells["gateway proxy -> api server"] = (proxy, Destination(443, address="10.100.0.1"))
    if "logging" in ns:
        cells["fluent bit -> cloudwatch"] = (pod("logging", {}), Destination(443, address=INTERNET))
        cells["fluent bit -> team pod"] = (pod("logging", {}), Destination(8080, pod=pod(team, {"app": "x"})))
    if "feast" in ns:
        server = pod("feast", {"app.kubernetes.io/name": "feature-server"})
        cells["prometheus -> feature server metrics 8000"] = (prometheus, Destination(8000, pod=server))
        cells["team -> feature server metrics 8000"] = (pod(team, {"app": "x"}), Destination(8000, pod=server))
        cells["prometheus -> feast materializer 8000"] = (
            prometheus,
            Destination(8000, pod=pod("feast", {"app.kubernetes.io/name": "feast-materializer"})),
        )
    if "gpu-warm-capacity" in ns:
        cells["warm capacity -> dns"] = (
            pod("gpu-warm-capacity", {}),
            Destination(53, "UDP", pod=pod("kube-system", pp.KUBE_DNS)),
        )
    return cells


ALLOWED = {
    "team -> mlflow 5000",
    "team -> vllm 8000",
    "team -> own postgres 5432",
    "team -> gateway proxy 10080",
    "mlflow -> database",
    "mlflow -> s3",
    "prometheus -> alertmanager 9093",
    "prometheus -> grafana 3000",
    "prometheus -> operator 10250",
    "prometheus -> kube-state-metrics 8080",
    "prometheus -> coredns 9153",
    "prometheus -> kubelet 10250",
    "prometheus -> node exporter 9100",
    "prometheus -> vllm 8000",
    "prometheus -> predictor 8080",
    "prometheus -> ray 8080",
    "prometheus -> team pod 9000",
    "prometheus -> dcgm 9400",
    "prometheus -> karpenter 8080",
    "prometheus -> feature server metrics 8000",
    "grafana -> prometheus 9090",
    "alertmanager -> sns",
    "kuberay operator -> ray head 8265",
    "vllm -> hub",
    "vllm -> dns",
    "keda operator -> prometheus 9090",
    "karpenter -> ec2",
    "gateway proxy -> predictor 8080",
    "gateway proxy -> controller xds",
    "fluent bit -> cloudwatch",
}


@pytest.mark.parametrize("stack", STACKS)
def test_reachability_of_the_platform_namespaces(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    policies, cluster = network_policies(plan), cluster_network_policies(plan)
    cells = _cells(plan)
    got = {name: connection_allowed(policies, cluster, source, dest) for name, (source, dest) in cells.items()}
    assert got == {name: name in ALLOWED for name in cells}


@pytest.mark.parametrize("stack", STACKS)
def test_what_keeps_a_team_off_the_database_is_the_admin_tier(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    source, dest = _cells(plan)["team -> database"]
    egress, _ = connection_decision(network_policies(plan), cluster_network_policies(plan), source, dest)
    assert egress.by == "admin mlplatform-database-guard/mlflow-database: Deny"


WEBHOOKS = {
    "prometheus operator": ("monitoring", pp.PROMETHEUS_OPERATOR, 10250),
    "cert-manager": ("cert-manager", {"app.kubernetes.io/name": "webhook"}, 10250),
    "kserve": ("kserve", {"control-plane": "kserve-controller-manager"}, 9443),
    "keda webhooks": ("keda", pp.KEDA_WEBHOOKS, 9443),
    "keda metrics api": ("keda", pp.KEDA_METRICS_SERVER, 6443),
    "envoy gateway": ("envoy-gateway-system", pp.ENVOY_GATEWAY, 9443),
}


@pytest.mark.parametrize("stack", STACKS)
def test_the_api_server_reaches_every_webhook_and_nothing_else(plans: dict[str, Plan], stack: str) -> None:
    """From the control plane's interface (an address of the private subnets): each webhook's port is open, the
    same pods' other ports and Prometheus are not."""
    plan = plans[stack]
    policies, cluster = network_policies(plan), cluster_network_policies(plan)
    control_plane = _private_address(plan, 30)
    present = set(_namespaces(plan))
    checked = 0
    for namespace, labels, port in WEBHOOKS.values():
        if namespace not in present:
            continue
        webhook = _pod(plan, namespace, labels)
        assert ingress_decision(policies, cluster, None, webhook, port, address=control_plane).allowed
        assert not ingress_decision(policies, cluster, None, webhook, port + 1, address=control_plane).allowed
        checked += 1
    assert checked >= 3  # monitoring, and KServe with cert-manager, in every stack
    prometheus = _pod(plan, "monitoring", pp.PROMETHEUS)
    assert not ingress_decision(policies, cluster, None, prometheus, 9090, address=control_plane).allowed
    assert not ingress_decision(policies, cluster, None, prometheus, 9090, address=INTERNET).allowed


def _selected_pod(plan: Plan, policy: Mapping[str, Any]) -> Pod:
    """A pod the policy selects: its podSelector's labels (expressions here only exclude)."""
    labels = dict((policy["spec"].get("podSelector") or {}).get("matchLabels") or {})
    return _pod(plan, policy["metadata"]["namespace"], labels)


@pytest.mark.parametrize("stack", STACKS)
def test_teams_reach_exactly_the_platform_endpoints(plans: dict[str, Plan], stack: str) -> None:
    """Over every pod a platform namespace's policy selects and every port any policy names: a team pod gets in
    to MLflow's 5000, the model servers' 8000 and 8080, the Gateway's listener and the feature server's 6566, and
    nowhere else."""
    plan = plans[stack]
    policies, cluster = network_policies(plan), cluster_network_policies(plan)
    team = _pod(plan, next(n for n, lb in _namespaces(plan).items() if lb.get(rbac.TENANT_LABEL) == TEAM), {"a": "b"})
    ports = {
        int(port["port"])
        for p in policies
        for rule in [*(p["spec"].get("ingress") or []), *(p["spec"].get("egress") or [])]
        for port in rule.get("ports") or []
        if isinstance(port.get("port"), int)
    }
    reached = {
        (target.namespace, port)
        for p in policies
        if p["metadata"]["namespace"] in pp.PLATFORM_NAMESPACES
        for target in [_selected_pod(plan, p)]
        for port in sorted(ports)
        if connection_allowed(policies, cluster, team, Destination(port, pod=target))
    }
    expected = {("mlflow", 5000), ("serving", 8000), ("serving", 8080)}
    if "envoy-gateway-system" in _namespaces(plan):
        expected.add(("envoy-gateway-system", 10080))
    if "feast" in _namespaces(plan):  # the feature server (prod's feature store)
        expected.add(("feast", 6566))
    assert reached == expected


def _pod_key(pod: Pod) -> tuple[str, tuple[tuple[str, str], ...]]:
    return pod.namespace, tuple(sorted(pod.labels.items()))


@pytest.mark.parametrize("stack", STACKS)
def test_who_reaches_prometheus_and_alertmanager(plans: dict[str, Plan], stack: str) -> None:
    """Sources: a pod of every selector the plan's policies name in any namespace, and a team pod. Alertmanager
    (which accepts silences) answers Prometheus only; Prometheus answers Grafana, itself and KEDA's operator."""
    plan = plans[stack]
    policies, cluster = network_policies(plan), cluster_network_policies(plan)
    sources = {_pod_key(s): s for s in (_selected_pod(plan, p) for p in policies)}
    team = next(n for n, lb in _namespaces(plan).items() if lb.get(rbac.TENANT_LABEL) == TEAM)
    sources[_pod_key(_pod(plan, team))] = _pod(plan, team)

    def reaching(target: Pod, port: int) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        dest = Destination(port, pod=target)
        return {key for key, s in sources.items() if connection_allowed(policies, cluster, s, dest)}

    prometheus = ("monitoring", tuple(sorted(pp.PROMETHEUS.items())))
    assert reaching(_pod(plan, "monitoring", pp.ALERTMANAGER), 9093) == {prometheus}
    expected = {prometheus, ("monitoring", tuple(sorted(pp.GRAFANA.items())))}
    if "keda" in _namespaces(plan):
        expected.add(("keda", tuple(sorted(pp.KEDA_OPERATOR.items()))))
    assert reaching(_pod(plan, "monitoring", pp.PROMETHEUS), 9090) == expected
