"""Default-deny NetworkPolicies for the platform's own namespaces, each followed by exactly the connections its
components make or accept, and an Admin-tier ClusterNetworkPolicy that keeps every namespace but MLflow's off the
database. Pure builders: no resources (the domains' components create them, `infra.k8s_resources.network_policies`).

What talks to what, and where each fact was read (charts at the versions pinned in infra/catalog/data/versions.json):
- Every pod that resolves names: UDP and TCP 53 to CoreDNS (`k8s-app: kube-dns` in kube-system).
- Controllers, operators, Prometheus' service discovery and Grafana's sidecars: TCP 443 to the `kubernetes`
  Service's address (`infra.k8s_documents.api_server_egress`: the policy agent filters before kube-proxy's DNAT).
- Admission webhooks, and KEDA's external-metrics APIService, are called by the API server. The EKS control plane
  reaches the cluster through network interfaces it places in the cluster's subnets (EKS user guide,
  clusters.adoc "Amazon EKS also provisions elastic network interfaces in your VPC subnets" and network-reqs.adoc,
  awsdocs/amazon-eks-user-guide 4d52b4d, 2024-12-18), and calls webhooks on the pod's address and container port
  (hybrid-nodes-prereqs.adoc: the control plane needs the remote pod CIDR for webhooks). Those interfaces share the
  private subnets with nodes and pods, so a webhook port admits the private subnets (`ClusterAddresses`): any
  address there, pods included, may open a TLS connection to the webhook port, and nothing else. Ports:
  kube-prometheus-stack 88.5.3 operator 10250 (`prometheusOperator.tls.internalPort`; it serves its webhook and
  metrics there), cert-manager v1.21.1 webhook 10250 (`webhook.securePort`), KServe v0.20.0 controller 9443
  (`webhook-server`, charts/kserve-resources/files/kserve/resources.yaml), KEDA 2.20.2 admission webhooks 9443
  (`webhooks.port` default) and metrics API server 6443 (`service.portHttpsTarget`), Envoy Gateway v1.9.0
  topology injector 9443 (templates/envoy-proxy-topology-injector-webhook.yaml). Karpenter 1.14.1 and KubeRay
  1.7.0 run no webhook (their charts have no webhook templates).
- Prometheus scrapes the platform's monitors (`infra.observability.documents.platform_monitors`) and the chart's
  own ServiceMonitors: its components, CoreDNS (9153), the kubelets (10250), node exporters (9100, host network)
  and kube-proxy (10249) on the nodes, and the API server's endpoints (443, the control plane's interfaces in the
  private subnets), DCGM exporter (9400), vLLM (8000), KServe predictors (8080), Ray (8080), Karpenter (8080), and
  any port of a team namespace (teams admit their monitoring; `infra.tenancy.documents.network_policies`). Charts
  whose ServiceMonitor the platform leaves off (cert-manager, KEDA, KubeRay, Fluent Bit, Envoy Gateway) are not
  scraped, so their metrics ports stay closed.
- Grafana queries Prometheus (9090) only; Alertmanager accepts 9093 from Prometheus only (silences are
  unauthenticated) and 9094 from its own replicas, and sends to SNS (AWS API) and a webhook URL (HTTPS).
- Pods that call AWS (their Pod Identity role): TCP 443 to public addresses (AWS endpoints, S3 through the
  gateway endpoint, whose prefix list a NetworkPolicy cannot name) and to the VPC's interface endpoints, and TCP 80
  to the Pod Identity agent. These are MLflow, vLLM and KServe's storage initializer, Alertmanager, Fluent Bit and
  Karpenter.

How the VPC CNI's policy agent enforces this (aws/aws-network-policy-agent v1.4.1, 3816fa4, 2026-07-23; the
pinned VPC CNI v1.22.4 ships the v1.4 line): traffic from and to the node's own address is always allowed
(pkg/fwruleprocessor/fw_rule_processor.go: "Traffic from the local node should always be allowed"), so the
kubelet's probes need no rule; pods on the host network are skipped (controllers/policyendpoints_controller.go
"Skipping hostNetwork pod"): the node exporter is not fenced by these policies, and connections from it or any
host-network pod on another node come from that node's address. An `ipBlock` is matched against every address in
it, pod addresses included (the agent keeps CIDRs in an LPM trie), which is why a webhook port admits the subnets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlplatform.infra.container_logs.documents import NAMESPACE as LOGGING_NAMESPACE
from mlplatform.infra.features.documents import (
    FEAST_NAMESPACE,
    FEATURE_SERVER_METRICS_PORT,
    FEATURE_SERVER_PORT,
    FEATURE_SERVER_SELECTOR,
    MATERIALIZER_SELECTOR,
)
from mlplatform.infra.gpu_pools.documents import (
    DEVICE_PLUGIN_NAMESPACE,
    EFA_DEVICE_PLUGIN_NAMESPACE,
    KARPENTER_NAMESPACE,
    WARM_CAPACITY_NAMESPACE,
)
from mlplatform.infra.k8s_documents import POD_IDENTITY_AGENT, PRIVATE_RANGES, api_server_egress
from mlplatform.infra.mlops.documents import (
    ACCOUNTS_SELECTOR,
    MLFLOW_NAMESPACE,
    MLFLOW_PORT,
    MLFLOW_SELECTOR,
    RAY_DASHBOARD_PORT,
    RAY_HEAD_SELECTOR,
    RAY_METRICS_PORT,
    RAY_NAMESPACE,
    RAY_OPERATOR_NAMESPACE,
)
from mlplatform.infra.network.cidr import plan_subnets
from mlplatform.infra.observability.documents import DCGM_NAMESPACE, PROMETHEUS_PORT
from mlplatform.infra.observability.documents import NAMESPACE as MONITORING_NAMESPACE
from mlplatform.infra.serving.documents import (
    CERT_MANAGER_NAMESPACE,
    KEDA_NAMESPACE,
    KSERVE_NAMESPACE,
    REGISTRY_POD_LABEL,
    SERVING_NAMESPACE,
    VLLM_PORT,
)
from mlplatform.infra.serving.routing import ENVOY_CONTAINER_PORT, ENVOY_GATEWAY_NAMESPACE, proxy_selector
from mlplatform.infra.tenancy.documents import CLUSTER_NETWORK_POLICY_API, TENANT_GUARD_PRIORITY, TENANT_LABEL

DEFAULT_DENY = "default-deny"
DATABASE_PORT = 5432
DATABASE_GUARD = "mlplatform-database-guard"
DATABASE_GUARD_PRIORITY = TENANT_GUARD_PRIORITY + 10
"""After the team guards: their first rule passes a team's own namespace to its NetworkPolicies (a Postgres of the
team's own on 5432 stays reachable there), and a database address matches none of their rules."""

PLATFORM_NAMESPACES = (
    MONITORING_NAMESPACE,
    DCGM_NAMESPACE,
    LOGGING_NAMESPACE,
    MLFLOW_NAMESPACE,
    FEAST_NAMESPACE,
    RAY_OPERATOR_NAMESPACE,
    SERVING_NAMESPACE,
    KSERVE_NAMESPACE,
    CERT_MANAGER_NAMESPACE,
    KEDA_NAMESPACE,
    ENVOY_GATEWAY_NAMESPACE,
    KARPENTER_NAMESPACE,
    DEVICE_PLUGIN_NAMESPACE,
    EFA_DEVICE_PLUGIN_NAMESPACE,
    WARM_CAPACITY_NAMESPACE,
)
"""Every namespace the platform makes for itself (the `ray` namespace's policies are
`infra.mlops.documents.ray_namespace_policies`); kube-system is EKS's."""

# Pods, by the labels their charts give them.
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
"""Set by the Prometheus Operator on every Prometheus pod."""
ALERTMANAGER = {"app.kubernetes.io/name": "alertmanager"}
GRAFANA = {"app.kubernetes.io/name": "grafana"}
KUBE_STATE_METRICS = {"app.kubernetes.io/name": "kube-state-metrics"}
PROMETHEUS_OPERATOR = {"app": "kube-prometheus-stack-operator"}
"""kube-prometheus-stack templates/prometheus-operator/deployment.yaml: `app: <chart name>-operator`."""
KEDA_OPERATOR = {"app": "keda-operator"}
KEDA_METRICS_SERVER = {"app": "keda-operator-metrics-apiserver"}
KEDA_WEBHOOKS = {"app": "keda-admission-webhooks"}
ENVOY_GATEWAY = {"control-plane": "envoy-gateway"}
KUBE_DNS = {"k8s-app": "kube-dns"}

ALERTMANAGER_PORT = 9093
ALERTMANAGER_MESH_PORT = 9094
GRAFANA_PORT = 3000
RELOADER_PORT = 8080
"""The config reloader sidecar of Prometheus and Alertmanager pods (`reloader-web`)."""
OPERATOR_PORT = 10250
KUBE_STATE_METRICS_PORT = 8080
KUBELET_PORT = 10250
NODE_EXPORTER_PORT = 9100
KUBE_PROXY_METRICS_PORT = 10249
COREDNS_METRICS_PORT = 9153
DCGM_PORT = 9400
KSERVE_PREDICTOR_PORT = 8080
KARPENTER_METRICS_PORT = 8080
CERT_MANAGER_WEBHOOK_PORT = 10250
KSERVE_WEBHOOK_PORT = 9443
KEDA_WEBHOOK_PORT = 9443
KEDA_METRICS_API_PORT = 6443
KEDA_OPERATOR_GRPC_PORT = 9666
ENVOY_GATEWAY_WEBHOOK_PORT = 9443
ENVOY_XDS_PORTS = (18000, 18001, 18002)
"""Envoy Gateway v1.9.0's controller Service: xDS (gRPC), rate limit and Wasm config."""


@dataclass(frozen=True)
class ClusterAddresses:
    """Addresses the policies name that only the cloud layer knows."""

    private_ranges: tuple[str, ...] = PRIVATE_RANGES
    """The cluster's (private) subnets: the control plane's network interfaces, the nodes, the pods and the MLflow
    database all live there."""
    interface_endpoints: tuple[str, ...] = ()
    """The VPC's interface endpoints (cloud output `interface_endpoint_cidrs`)."""


def private_ranges(vpc_cidr: str | None, az_count: int) -> tuple[str, ...]:
    """The private subnets the platform plans inside `vpc_cidr` (`infra.network.cidr.plan_subnets`); for an adopted
    VPC (None) the private address ranges of RFC 1918, which contain its subnets."""
    if vpc_cidr is None:
        return PRIVATE_RANGES
    return tuple(str(n) for n in plan_subnets(vpc_cidr, az_count).private)


# --- building blocks -------------------------------------------------------------------------------------------


def _policy(namespace: str, name: str, labels: Mapping[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "spec": spec}


def _select(labels: Mapping[str, str] | None) -> dict[str, Any]:
    return {"matchLabels": dict(labels)} if labels else {}


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _pods(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {**_namespace(namespace), "podSelector": _select(labels)}


TEAMS = {"namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}}
"""Every team namespace (the tenant label, which members cannot change)."""


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _blocks(cidrs: Sequence[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": str(ipaddress.ip_network(c))}} for c in cidrs]


def default_deny(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Every pod of the namespace isolated both ways: only what another policy of the namespace allows."""
    return _policy(namespace, DEFAULT_DENY, labels, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def dns(namespace: str, labels: Mapping[str, str], pods: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return _policy(
        namespace,
        "allow-dns",
        labels,
        {
            "podSelector": dict(pods or {}),
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [_pods("kube-system", KUBE_DNS)],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    )


def api_server(namespace: str, labels: Mapping[str, str], pods: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return _policy(namespace, "allow-api-server", labels, api_server_egress(pods or {}))


def aws_apis(
    namespace: str,
    labels: Mapping[str, str],
    addresses: ClusterAddresses,
    pods: Mapping[str, Any] | None = None,
    name: str = "allow-aws-apis",
) -> dict[str, Any]:
    """HTTPS to public addresses and to the interface endpoints, HTTP to the Pod Identity agent."""
    egress: list[dict[str, Any]] = [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}], "ports": _tcp(443)}
    ]
    if addresses.interface_endpoints:
        egress.append({"to": _blocks(addresses.interface_endpoints), "ports": _tcp(443)})
    egress.append({"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": _tcp(80)})
    return _policy(
        namespace, name, labels, {"podSelector": dict(pods or {}), "policyTypes": ["Egress"], "egress": egress}
    )


def ingress(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    pods: Mapping[str, Any],
    rules: Sequence[tuple[Sequence[Mapping[str, Any]], Sequence[int]]],
) -> dict[str, Any]:
    """The selected pods accept each rule's ports from its peers."""
    return _policy(
        namespace,
        name,
        labels,
        {
            "podSelector": dict(pods),
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [dict(p) for p in peers], "ports": _tcp(*ports)} for peers, ports in rules],
        },
    )


def egress(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    pods: Mapping[str, Any],
    rules: Sequence[tuple[Sequence[Mapping[str, Any]], Sequence[int] | None]],
) -> dict[str, Any]:
    """The selected pods may open each rule's ports (None: every port) to its peers."""
    return _policy(
        namespace,
        name,
        labels,
        {
            "podSelector": dict(pods),
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [dict(p) for p in peers], **({"ports": _tcp(*ports)} if ports is not None else {})}
                for peers, ports in rules
            ],
        },
    )


def _from_prometheus(namespace: str, labels: Mapping[str, str], pods: Mapping[str, Any], *ports: int) -> dict[str, Any]:
    return ingress(namespace, "allow-prometheus", labels, pods, [([_pods(MONITORING_NAMESPACE, PROMETHEUS)], ports)])


def _webhook(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    pods: Mapping[str, Any],
    addresses: ClusterAddresses,
    port: int,
) -> dict[str, Any]:
    """The API server calls it from its network interfaces in the private subnets."""
    return ingress(namespace, name, labels, pods, [(_blocks(addresses.private_ranges), [port])])


# --- monitoring ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScrapeTarget:
    """What Prometheus scrapes: pods of a namespace on a port."""

    namespace: str
    pods: Mapping[str, str]
    port: int


def scrape_targets(
    *,
    dcgm: bool,
    vllm: bool,
    kserve: bool,
    ray: bool,
    karpenter: bool,
    feature_server: bool = False,
) -> list[ScrapeTarget]:
    """The platform's pods Prometheus scrapes (its own components and the platform's monitors); the nodes, the
    API server and the team namespaces are in `monitoring_policies`."""
    own = MONITORING_NAMESPACE
    targets = [
        ScrapeTarget(namespace=own, pods=PROMETHEUS, port=PROMETHEUS_PORT),
        ScrapeTarget(namespace=own, pods=PROMETHEUS, port=RELOADER_PORT),
        ScrapeTarget(namespace=own, pods=ALERTMANAGER, port=ALERTMANAGER_PORT),
        ScrapeTarget(namespace=own, pods=ALERTMANAGER, port=RELOADER_PORT),
        ScrapeTarget(namespace=own, pods=GRAFANA, port=GRAFANA_PORT),
        ScrapeTarget(namespace=own, pods=PROMETHEUS_OPERATOR, port=OPERATOR_PORT),
        ScrapeTarget(namespace=own, pods=KUBE_STATE_METRICS, port=KUBE_STATE_METRICS_PORT),
        ScrapeTarget(namespace="kube-system", pods=KUBE_DNS, port=COREDNS_METRICS_PORT),
    ]
    if dcgm:
        targets.append(ScrapeTarget(namespace=DCGM_NAMESPACE, pods={}, port=DCGM_PORT))
    if vllm:
        targets.append(
            ScrapeTarget(namespace=SERVING_NAMESPACE, pods={"app.kubernetes.io/name": "vllm"}, port=VLLM_PORT)
        )
    if kserve:
        targets.append(ScrapeTarget(namespace=SERVING_NAMESPACE, pods={}, port=KSERVE_PREDICTOR_PORT))
    if ray:
        targets.append(ScrapeTarget(namespace=RAY_NAMESPACE, pods={}, port=RAY_METRICS_PORT))
    if karpenter:
        targets.append(
            ScrapeTarget(
                namespace=KARPENTER_NAMESPACE, pods={"app.kubernetes.io/name": "karpenter"}, port=KARPENTER_METRICS_PORT
            )
        )
    if feature_server:
        targets.append(
            ScrapeTarget(namespace=FEAST_NAMESPACE, pods=FEATURE_SERVER_SELECTOR, port=FEATURE_SERVER_METRICS_PORT)
        )
    return targets


NODE_SCRAPE_PORTS = (KUBELET_PORT, NODE_EXPORTER_PORT, KUBE_PROXY_METRICS_PORT, 443)
"""On the nodes' (and the control plane's) addresses: kubelet and cAdvisor, the node exporter (host network),
kube-proxy, and the API server's endpoints (kube-prometheus-stack's `kubeApiServer` job scrapes the `kubernetes`
Endpoints, the control plane's interfaces)."""


def alertmanager_pods() -> dict[str, Any]:
    """A peer: Alertmanager's pods in the monitoring namespace."""
    return _pods(MONITORING_NAMESPACE, ALERTMANAGER)


def monitoring_policies(
    addresses: ClusterAddresses,
    labels: Mapping[str, str],
    *,
    targets: Sequence[ScrapeTarget],
    grafana: bool,
    event_endpoints: Sequence[tuple[str, Mapping[str, str], int]] = (),
    pushgateway: tuple[Mapping[str, str], int, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """The `monitoring` namespace: Prometheus, Alertmanager, Grafana, the Prometheus Operator and its webhook,
    kube-state-metrics (the node exporter runs on the host network: no policy applies to it)."""
    ns = MONITORING_NAMESPACE
    prometheus = _select(PROMETHEUS)
    alertmanager = _select(ALERTMANAGER)
    by_port: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = {}
    for t in targets:
        by_port.setdefault((t.namespace, tuple(sorted(t.pods.items()))), []).append(t.port)
    scrape_rules: list[tuple[Sequence[Mapping[str, Any]], Sequence[int] | None]] = [
        ([_pods(namespace, dict(pods))], sorted(set(ports))) for (namespace, pods), ports in by_port.items()
    ]
    scrape_rules += [
        (_blocks(addresses.private_ranges), list(NODE_SCRAPE_PORTS)),
        ([TEAMS], None),
    ]
    policies = [
        default_deny(ns, labels),
        dns(ns, labels),
        # Everything but Alertmanager reads the API: Prometheus' service discovery, the operator, kube-state-metrics,
        # Grafana's sidecars, the webhook certificate jobs.
        api_server(
            ns,
            labels,
            {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["alertmanager"]}]},
        ),
        egress(ns, "prometheus-scrape", labels, prometheus, scrape_rules),
        egress(
            ns,
            "prometheus-to-alertmanager",
            labels,
            prometheus,
            [([{"podSelector": alertmanager}], [ALERTMANAGER_PORT])],
        ),
        ingress(
            ns,
            "prometheus-queries",
            labels,
            prometheus,
            [
                (
                    [
                        {"podSelector": _select(GRAFANA)},
                        {"podSelector": prometheus},
                        _pods(KEDA_NAMESPACE, KEDA_OPERATOR),
                    ],
                    [PROMETHEUS_PORT],
                ),
                ([{"podSelector": prometheus}], [RELOADER_PORT]),
            ],
        ),
        ingress(
            ns,
            "alertmanager-from-prometheus",
            labels,
            alertmanager,
            [([{"podSelector": prometheus}], [ALERTMANAGER_PORT, RELOADER_PORT])],
        ),
        _policy(
            ns,
            "alertmanager-mesh",
            labels,
            {
                "podSelector": alertmanager,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [{"podSelector": alertmanager}],
                        "ports": [
                            {"protocol": "TCP", "port": ALERTMANAGER_MESH_PORT},
                            {"protocol": "UDP", "port": ALERTMANAGER_MESH_PORT},
                        ],
                    }
                ],
                "egress": [
                    {
                        "to": [{"podSelector": alertmanager}],
                        "ports": [
                            {"protocol": "TCP", "port": ALERTMANAGER_MESH_PORT},
                            {"protocol": "UDP", "port": ALERTMANAGER_MESH_PORT},
                        ],
                    }
                ],
            },
        ),
        # SNS and the Secrets Manager secret holding the webhook URL (its init container), and the webhook (HTTPS).
        aws_apis(ns, labels, addresses, alertmanager),
        ingress(
            ns,
            "operator",
            labels,
            _select(PROMETHEUS_OPERATOR),
            [(_blocks(addresses.private_ranges), [OPERATOR_PORT]), ([{"podSelector": prometheus}], [OPERATOR_PORT])],
        ),
        ingress(
            ns,
            "kube-state-metrics",
            labels,
            _select(KUBE_STATE_METRICS),
            [([{"podSelector": prometheus}], [KUBE_STATE_METRICS_PORT])],
        ),
    ]
    if pushgateway is not None:
        # (its pods, its port, the label of the team pods that push): Prometheus scrapes it (a ScrapeTarget), and
        # only the pushing pods of team namespaces reach it.
        gateway, gateway_port, pushers = pushgateway
        policies.append(
            ingress(
                ns,
                "pushgateway",
                labels,
                _select(gateway),
                [([{"podSelector": prometheus}, {**TEAMS, "podSelector": _select(pushers)}], [gateway_port])],
            )
        )
    for target_ns, selector, port in event_endpoints:
        # Drift alerts to the Argo server's event endpoint (the retrain trigger).
        policies.append(
            egress(ns, f"alertmanager-to-{target_ns}", labels, alertmanager, [([_pods(target_ns, selector)], [port])])
        )
    if grafana:
        policies += [
            egress(
                ns,
                "grafana-to-prometheus",
                labels,
                _select(GRAFANA),
                [([{"podSelector": prometheus}], [PROMETHEUS_PORT])],
            ),
            ingress(ns, "grafana", labels, _select(GRAFANA), [([{"podSelector": prometheus}], [GRAFANA_PORT])]),
        ]
    return policies


def dcgm_policies(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """DCGM exporter: Prometheus on its metrics port; it reads the GPUs and the kubelet's pod-resources socket
    locally, and the API server for pod labels (the chart's role)."""
    ns = DCGM_NAMESPACE
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels),
        _from_prometheus(ns, labels, {}, DCGM_PORT),
    ]


def logging_policies(addresses: ClusterAddresses, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Fluent Bit: the API server (its kubernetes filter) and CloudWatch Logs; nothing scrapes it."""
    ns = LOGGING_NAMESPACE
    return [default_deny(ns, labels), dns(ns, labels), api_server(ns, labels), aws_apis(ns, labels, addresses)]


# --- MLflow, Ray ------------------------------------------------------------------------------------------------


def mlflow_policies(
    addresses: ClusterAddresses,
    labels: Mapping[str, str],
    *,
    load_balancer: bool,
    registry_clients: bool = False,
    accounts_job: bool = False,
) -> list[dict[str, Any]]:
    """The MLflow server: teams on its port (and the internal ALB's addresses in the private subnets, which
    forwards to the pods, when the Ingress is on; with `registry_clients`, the serving namespace's predictors whose
    model comes from the registry, for their init container); its database on 5432 in the private subnets, S3 and
    Secrets Manager. The server never calls the Kubernetes API. With `accounts_job`, the `mlflow-accounts` Job's
    pods reach the server and Secrets Manager (the admin secret), nothing else."""
    ns = MLFLOW_NAMESPACE
    server = _select(MLFLOW_SELECTOR)
    sources: list[tuple[Sequence[Mapping[str, Any]], Sequence[int]]] = [([TEAMS], [MLFLOW_PORT])]
    if registry_clients:
        sources.append(([_pods(SERVING_NAMESPACE, REGISTRY_POD_LABEL)], [MLFLOW_PORT]))
    if load_balancer:
        sources.append((_blocks(addresses.private_ranges), [MLFLOW_PORT]))
    accounts = _select(ACCOUNTS_SELECTOR)
    if accounts_job:
        sources.append(([{"podSelector": accounts}], [MLFLOW_PORT]))
    policies = [
        default_deny(ns, labels),
        dns(ns, labels),
        aws_apis(ns, labels, addresses, server),
        egress(ns, "mlflow-database", labels, server, [(_blocks(addresses.private_ranges), [DATABASE_PORT])]),
        ingress(ns, "mlflow-clients", labels, server, sources),
    ]
    if accounts_job:
        policies += [
            aws_apis(ns, labels, addresses, accounts, name="accounts-aws-apis"),
            egress(ns, "accounts-to-mlflow", labels, accounts, [([{"podSelector": server}], [MLFLOW_PORT])]),
        ]
    return policies


def feast_policies(
    addresses: ClusterAddresses, labels: Mapping[str, str], *, serving: bool = False
) -> list[dict[str, Any]]:
    """The feature server: the teams' pods on its port, and with `serving` the serving namespace's model servers
    (whose `to-feature-server` egress policy names it); Prometheus on its metrics port; S3 and DynamoDB (AWS APIs).
    The materialization pods: AWS APIs only. Neither calls the Kubernetes API."""
    ns = FEAST_NAMESPACE
    server = _select(FEATURE_SERVER_SELECTOR)
    materializer = _select(MATERIALIZER_SELECTOR)
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        aws_apis(ns, labels, addresses, server),
        aws_apis(ns, labels, addresses, materializer, name="materializer-aws-apis"),
        ingress(
            ns,
            "feature-server-clients",
            labels,
            server,
            [([TEAMS, *([_namespace(SERVING_NAMESPACE)] if serving else [])], [FEATURE_SERVER_PORT])],
        ),
        _from_prometheus(ns, labels, server, FEATURE_SERVER_METRICS_PORT),
    ]


def kuberay_operator_policies(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The KubeRay operator: the API server, and the heads' dashboard (8265) in the `ray` namespace and the team
    namespaces (how it submits RayJobs; their `ray_head_policies` admit it). Its metrics are not scraped."""
    ns = RAY_OPERATOR_NAMESPACE
    heads = {"podSelector": _select(RAY_HEAD_SELECTOR)}
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels),
        egress(
            ns,
            "ray-heads",
            labels,
            {},
            [([{**_namespace(RAY_NAMESPACE), **heads}, {**TEAMS, **heads}], [RAY_DASHBOARD_PORT])],
        ),
    ]


# --- serving ----------------------------------------------------------------------------------------------------


def serving_policies(
    addresses: ClusterAddresses,
    labels: Mapping[str, str],
    *,
    gateway: bool,
    registry: bool = False,
    feature_server: bool = False,
) -> list[dict[str, Any]]:
    """Model servers (vLLM on 8000, KServe predictors on 8080): teams on both ports, the models' Gateway proxies on
    8080, Prometheus on both; S3, Secrets Manager and the model hub over HTTPS; with `registry`, the predictors
    labelled as registry-served reach MLflow (their init container resolves `models:/`). No Kubernetes API."""
    ns = SERVING_NAMESPACE
    sources: list[tuple[Sequence[Mapping[str, Any]], Sequence[int]]] = [
        ([TEAMS], [VLLM_PORT, KSERVE_PREDICTOR_PORT]),
        ([_pods(MONITORING_NAMESPACE, PROMETHEUS)], [VLLM_PORT, KSERVE_PREDICTOR_PORT]),
    ]
    if gateway:
        sources.append(([_pods(ENVOY_GATEWAY_NAMESPACE, proxy_selector())], [KSERVE_PREDICTOR_PORT]))
    policies = [
        default_deny(ns, labels),
        dns(ns, labels),
        aws_apis(ns, labels, addresses),
        ingress(ns, "model-clients", labels, {}, sources),
    ]
    if registry:
        mlflow = [_pods(MLFLOW_NAMESPACE, MLFLOW_SELECTOR)]
        policies.append(
            egress(ns, "registry-to-mlflow", labels, _select(REGISTRY_POD_LABEL), [(mlflow, [MLFLOW_PORT])])
        )
    if feature_server:
        # Model servers and transformers read online features (the feature store's `feast` namespace).
        server = [_pods(FEAST_NAMESPACE, FEATURE_SERVER_SELECTOR)]
        policies.append(egress(ns, "to-feature-server", labels, {}, [(server, [FEATURE_SERVER_PORT])]))
    return policies


def kserve_policies(addresses: ClusterAddresses, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    ns = KSERVE_NAMESPACE
    controller = _select({"control-plane": "kserve-controller-manager"})
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels),
        _webhook(ns, "allow-webhook", labels, controller, addresses, KSERVE_WEBHOOK_PORT),
    ]


def cert_manager_policies(addresses: ClusterAddresses, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """cert-manager issues KServe's webhook certificate from a self-signed issuer: no ACME, no egress but the API."""
    ns = CERT_MANAGER_NAMESPACE
    webhook = _select({"app.kubernetes.io/name": "webhook"})
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels),
        _webhook(ns, "allow-webhook", labels, webhook, addresses, CERT_MANAGER_WEBHOOK_PORT),
    ]


def keda_policies(addresses: ClusterAddresses, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """KEDA: the API server calls its admission webhooks and its external-metrics API server; the metrics server
    asks the operator (gRPC 9666); the operator queries Prometheus for the ScaledObjects' triggers."""
    ns = KEDA_NAMESPACE
    operator = _select(KEDA_OPERATOR)
    metrics = _select(KEDA_METRICS_SERVER)
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels),
        _webhook(ns, "allow-webhook", labels, _select(KEDA_WEBHOOKS), addresses, KEDA_WEBHOOK_PORT),
        _webhook(ns, "allow-metrics-api", labels, metrics, addresses, KEDA_METRICS_API_PORT),
        ingress(
            ns,
            "operator-from-metrics-server",
            labels,
            operator,
            [([{"podSelector": metrics}], [KEDA_OPERATOR_GRPC_PORT])],
        ),
        egress(
            ns,
            "metrics-server-to-operator",
            labels,
            metrics,
            [([{"podSelector": operator}], [KEDA_OPERATOR_GRPC_PORT])],
        ),
        egress(
            ns,
            "operator-to-prometheus",
            labels,
            operator,
            [([_pods(MONITORING_NAMESPACE, PROMETHEUS)], [PROMETHEUS_PORT])],
        ),
    ]


def envoy_gateway_policies(addresses: ClusterAddresses, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Envoy Gateway: the controller (API server, xDS to its proxies, the topology injector webhook) and the
    models' proxies (teams on the listener port, the predictors on 8080, xDS from the controller)."""
    ns = ENVOY_GATEWAY_NAMESPACE
    proxies = _select(proxy_selector())
    controller = _select(ENVOY_GATEWAY)
    # The controller and its certificate job read the API; the proxies get their configuration over xDS.
    not_proxies = {"matchExpressions": [{"key": next(iter(proxy_selector())), "operator": "DoesNotExist"}]}
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels, not_proxies),
        _webhook(ns, "allow-webhook", labels, controller, addresses, ENVOY_GATEWAY_WEBHOOK_PORT),
        ingress(ns, "controller-from-proxies", labels, controller, [([{"podSelector": proxies}], ENVOY_XDS_PORTS)]),
        egress(
            ns,
            "proxies",
            labels,
            proxies,
            [
                ([{"podSelector": controller}], ENVOY_XDS_PORTS),
                ([_namespace(SERVING_NAMESPACE)], [KSERVE_PREDICTOR_PORT]),
            ],
        ),
        ingress(ns, "proxies-from-teams", labels, proxies, [([TEAMS], [ENVOY_CONTAINER_PORT])]),
    ]


# --- GPU pools --------------------------------------------------------------------------------------------------


def karpenter_policies(addresses: ClusterAddresses, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Karpenter: the API server, EC2/SSM/pricing/SQS/IAM (AWS APIs), Prometheus on its metrics port."""
    ns = KARPENTER_NAMESPACE
    return [
        default_deny(ns, labels),
        dns(ns, labels),
        api_server(ns, labels),
        aws_apis(ns, labels, addresses),
        _from_prometheus(ns, labels, {"matchLabels": {"app.kubernetes.io/name": "karpenter"}}, KARPENTER_METRICS_PORT),
    ]


def device_plugin_policies(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The NVIDIA device plugin talks to the kubelet over a socket; its config manager reads the node's label."""
    ns = DEVICE_PLUGIN_NAMESPACE
    return [default_deny(ns, labels), dns(ns, labels), api_server(ns, labels)]


def efa_device_plugin_policies(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The EFA device plugin talks to the kubelet over a socket and to nothing else (the chart mounts no token)."""
    return [default_deny(EFA_DEVICE_PLUGIN_NAMESPACE, labels)]


def warm_capacity_policies(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Pause pods that hold GPU nodes: no connection at all."""
    return [default_deny(WARM_CAPACITY_NAMESPACE, labels)]


# --- the database guard -----------------------------------------------------------------------------------------


def database_guard(addresses: ClusterAddresses, labels: Mapping[str, str]) -> dict[str, Any]:
    """An Admin-tier ClusterNetworkPolicy: no pod outside the `mlflow` namespace may open TCP 5432 to the
    database's subnets, whatever a namespace's NetworkPolicies allow (Admin-tier rules are evaluated first).

    Security groups for pods would make the database's security group admit MLflow's pods only; they are not used
    here (see docs/security.md, "Platform namespaces: default deny"): MLflow runs on the system nodes and such a pod
    needs a trunk-interface instance type (no `t` family: not dev's system nodes), a branch interface from a per-type
    limit, `ENABLE_POD_ENI` on the VPC CNI and a security group passed between the layers. The database's security
    group still admits the cluster security group, so host-network pods and the nodes themselves are outside this
    guard."""
    return {
        "apiVersion": CLUSTER_NETWORK_POLICY_API,
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": DATABASE_GUARD, "labels": dict(labels)},
        "spec": {
            "tier": "Admin",
            "priority": DATABASE_GUARD_PRIORITY,
            "subject": {
                "namespaces": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [MLFLOW_NAMESPACE]}
                    ]
                }
            },
            "egress": [
                {
                    "name": "mlflow-database",
                    "action": "Deny",
                    "to": [{"networks": [str(ipaddress.ip_network(c)) for c in addresses.private_ranges]}],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": DATABASE_PORT}}],
                }
            ],
        },
    }
