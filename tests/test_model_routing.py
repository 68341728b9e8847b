"""Canary splits that are enforced: KServe v0.20.0 in Standard mode routes nothing to `spec.canary[]`, so the platform
installs Envoy Gateway v1.9.0 with the Gateway API v1.6.1 standard CRDs, an in-cluster Gateway, and one weighted
HTTPRoute per InferenceService. Builders first (names and ports as KServe and Envoy Gateway make them, weights,
schemas), then the shipped stacks' plans (prod 90/10, staging 80/20, dev 100), their order and teardown."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pulumi_kubernetes as k8s
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.infra.catalog import versions
from mlplatform.infra.k8s_resources import custom_resource, helm_release
from mlplatform.infra.serving import documents, routing
from mlplatform.infra.serving.documents import InferenceServiceSpec
from mlplatform.mlp.k8s_schema import _strict
from mlplatform.mlp.ordering import FINALIZED_BY, check_order
from mlplatform.mlp.planner import Plan, PlannedResource
from mlplatform.mlp.render import key_settings
from mlplatform.mlp.schema_gate import check_plan
from tests.conftest import plan_component
from tests.k8s_schema import CRD_DIR, object_of, validate_custom_resource

ROOT = Path(__file__).resolve().parents[1]
SERVED_CRDS = ROOT / "infra" / "serving" / "data" / "gateway-api-v1.6.1"
ENVOY_PROXY_PROVIDER = ROOT / "tests" / "data" / "envoy-gateway-v1.9.0" / "envoyproxy-spec-provider.json"

UPSTREAM_SHA256 = {
    # kubernetes-sigs/gateway-api config/crd/standard @ v1.6.1 (8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3), as
    # recorded in the project's upstream snapshot notes (2026-12-04).
    "gatewayclasses": "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5",
    "gateways": "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a",
    "httproutes": "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
    "referencegrants": "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
}


def _isvc(**overrides: Any) -> InferenceServiceSpec:
    base: dict[str, Any] = {
        "name": "churn-model",
        "model_format": "sklearn",
        "runtime": None,
        "storage_path": "churn/v3",
        "min_replicas": 2,
        "max_replicas": 6,
        "cpu": "1",
        "memory": "2Gi",
        "canary_storage_path": "churn/v4",
        "canary_traffic_percent": 10,
    }
    base.update(overrides)
    return InferenceServiceSpec(**base)


# --- builders ---------------------------------------------------------------------------------------------------


def test_a_canary_route_sends_100_minus_p_to_the_stable_predictor_and_p_to_the_canary() -> None:
    route = routing.http_route(_isvc(), labels={"team": "ml"})
    assert validate_custom_resource(route) == []  # against the Gateway API v1.6.1 standard HTTPRoute CRD
    assert route["metadata"] == {"name": "churn-model-traffic", "namespace": "serving", "labels": {"team": "ml"}}
    spec = route["spec"]
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": "serving",
            "name": "models",
            "sectionName": "http",
        }
    ]
    assert spec["hostnames"] == ["churn-model-serving.models.internal"]
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [
        {"kind": "Service", "name": "churn-model-predictor", "port": 80, "weight": 90},
        {"kind": "Service", "name": "churn-model-canary-predictor", "port": 80, "weight": 10},
    ]
    assert rule["timeouts"] == {"request": "60s"}  # KServe v0.20's own default; Envoy's would be 15 s


def test_a_service_without_a_canary_still_gets_a_route_all_to_its_stable_predictor() -> None:
    route = routing.http_route(_isvc(canary_storage_path=None, canary_traffic_percent=None), labels={})
    assert validate_custom_resource(route) == []
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"kind": "Service", "name": "churn-model-predictor", "port": 80, "weight": 100}]
    assert route["spec"]["hostnames"] == ["churn-model-serving.models.internal"]  # the same address either way


@given(percent=st.integers(min_value=1, max_value=99), floor=st.integers(min_value=1, max_value=12))
def test_the_route_weights_and_the_canary_kserve_runs_come_from_one_percent(percent: int, floor: int) -> None:
    spec = _isvc(canary_traffic_percent=percent, min_replicas=floor, max_replicas=floor + 2)
    isvc = documents.inference_service(spec, bucket="models", labels={}, pool_label="pool")
    (canary,) = isvc["spec"]["canary"]
    (rule,) = routing.http_route(spec, labels={})["spec"]["rules"]
    stable, candidate = rule["backendRefs"]
    assert (stable["weight"], candidate["weight"]) == (100 - percent, canary["trafficPercent"])
    assert stable["name"] == routing.predictor_service(isvc["metadata"]["name"])
    assert candidate["name"] == routing.predictor_service(isvc["metadata"]["name"], canary["predictor"]["name"])
    # KServe's webhook refuses a canary above the stable floor; the route's share always has a pod to go to.
    replicas = canary["predictor"]["minReplicas"]
    assert 1 <= replicas <= floor
    assert replicas == max(1, -(-floor * percent // 100))  # KServe v0.20's canaryReplicaCount, floored at 1


def test_names_and_ports_are_the_ones_kserve_and_envoy_gateway_make() -> None:
    # KServe v0.20.0 constants.PredictorServiceName: {isvc}-predictor, {isvc}-{name}-predictor for a named predictor
    assert routing.predictor_service("churn-model") == "churn-model-predictor"
    assert routing.predictor_service("churn-model", "canary") == "churn-model-canary-predictor"
    assert routing.PREDICTOR_SERVICE_PORT == 80  # constants.CommonDefaultHttpPort, createDefaultSvc
    # Envoy Gateway v1.9.0's own fixtures: internal/infrastructure/kubernetes/proxy_serviceaccount_test.go and the
    # v1.9 docs (tasks/operations/deployment-mode.md, egctl.md) for the quickstart Gateway default/eg.
    assert routing.envoy_resource_name("test") == "envoy-test-9f86d081"
    long_name = "very-long-name-that-will-be-hashed-and-cut-off-because-its-too-long"
    assert routing.envoy_resource_name(long_name) == "envoy-very-long-name-that-will-be-hashed-and-cut-off-b-5bacc75e"
    assert routing.envoy_service_name("default", "eg") == "envoy-default-eg-e41e7b31"
    assert routing.gateway_address() == "envoy-serving-models-283eb6e5.envoy-gateway-system.svc.cluster.local"
    # A listener on 80 is served by Envoy on 10080 (servicePortToContainerPort): what a NetworkPolicy must admit.
    assert routing.ENVOY_CONTAINER_PORT == 10080


def test_the_gateway_is_internal_and_takes_routes_from_its_own_namespace_only() -> None:
    gateway = routing.gateway(labels={})
    gateway_class = routing.gateway_class(labels={})
    assert validate_custom_resource(gateway) == [] and validate_custom_resource(gateway_class) == []
    assert gateway["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"] == "envoy-internal"
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["protocol"], listener["port"], listener["hostname"]) == ("HTTP", 80, "*.models.internal")
    assert listener["allowedRoutes"]["namespaces"] == {"from": "Same"}
    values = routing.envoy_gateway_values(
        node_selector={"role": "system"}, gateway_image="gw:1", proxy_image="envoy:1", proxy_replicas=1
    )
    assert gateway_class["spec"]["controllerName"] == values["config"]["envoyGateway"]["gateway"]["controllerName"]
    kubernetes = values["config"]["envoyGateway"]["envoyProxy"]["provider"]["kubernetes"]
    assert kubernetes["envoyService"] == {"type": "ClusterIP"}  # never Envoy Gateway's default LoadBalancer
    assert "LoadBalancer" not in json.dumps(values)
    assert values["crds"] == {"enabled": False}  # the chart's bundle is the experimental channel


def _provider_validator() -> jsonschema.Draft7Validator:
    stored = json.loads(ENVOY_PROXY_PROVIDER.read_text())
    assert stored["source"]["upstream"].endswith("@ v1.9.0 (39763b1c07ec30a5526fe70434a2cfe4181de642, 2026-08-15)")
    return jsonschema.Draft7Validator(_strict(stored["schema"]))


@pytest.mark.parametrize("replicas", [1, 2])
def test_the_default_envoy_proxy_is_a_valid_envoyproxy_provider(replicas: int) -> None:
    values = routing.envoy_gateway_values(
        node_selector={"node.mlplatform.io/role": "system"},
        gateway_image=versions.image("envoy-gateway"),
        proxy_image=versions.image("envoy-proxy"),
        proxy_replicas=replicas,
    )
    provider = values["config"]["envoyGateway"]["envoyProxy"]["provider"]
    validator = _provider_validator()
    assert [e.message for e in validator.iter_errors(provider)] == []
    deployment = provider["kubernetes"]["envoyDeployment"]
    assert deployment["replicas"] == replicas and deployment["container"]["image"] == versions.image("envoy-proxy")
    assert deployment["pod"]["nodeSelector"] == {"node.mlplatform.io/role": "system"}
    # Two proxies: on different nodes when they can be, one evicted at a time.
    assert ("envoyPDB" in provider["kubernetes"]) is (replicas > 1)
    assert ("topologySpreadConstraints" in deployment["pod"]) is (replicas > 1)
    # The schema is strict: a misspelled key or a Service type outside the enum is refused.
    typo = copy.deepcopy(provider)
    typo["kubernetes"]["envoyServce"] = typo["kubernetes"].pop("envoyService")
    assert any("envoyServce" in e.message for e in validator.iter_errors(typo))
    balancer = copy.deepcopy(provider)
    balancer["kubernetes"]["envoyService"]["type"] = "LoadBalancr"
    assert list(validator.iter_errors(balancer))


def test_the_crds_are_the_published_standard_channel_and_what_the_gate_checks_against() -> None:
    crds = routing.gateway_api_crds()
    assert [c["spec"]["names"]["kind"] for c in crds] == ["GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant"]
    for plural, expected in UPSTREAM_SHA256.items():
        shipped = (SERVED_CRDS / f"gateway.networking.k8s.io_{plural}.yaml").read_bytes()
        assert hashlib.sha256(shipped).hexdigest() == expected, plural
    for crd in crds:
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
        assert annotations["gateway.networking.k8s.io/bundle-version"] == "v1.6.1"
    # The schema gate's reduced copies were made from these very files.
    for plural in ("gatewayclasses", "gateways", "httproutes"):
        reduced = json.loads((CRD_DIR / "gateway-api-v1.6.1" / f"gateway.networking.k8s.io_{plural}.json").read_text())
        assert reduced["source"]["sha256"] == UPSTREAM_SHA256[plural]
    # Envoy Gateway v1.9.0 watches ReferenceGrants at v1beta1: the installed CRD must serve it.
    grants = next(c for c in crds if c["spec"]["names"]["kind"] == "ReferenceGrant")
    assert {v["name"] for v in grants["spec"]["versions"] if v["served"]} == {"v1", "v1beta1"}


def test_kserve_makes_no_route_of_its_own_and_reports_the_routes_host() -> None:
    values = documents.kserve_values(node_selector={}, region="us-east-1", domain=routing.MODEL_DOMAIN)
    gateway = values["kserve"]["controller"]["gateway"]
    assert gateway["disableIngressCreation"] is True and gateway["ingressGateway"] == {"enableGatewayApi": False}
    # status.url = KServe's default domainTemplate over this domain: the host the platform's route answers.
    template = "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}"
    rendered = (
        template.replace("{{ .Name }}", "churn-model")
        .replace("{{ .Namespace }}", "serving")
        .replace("{{ .IngressDomain }}", gateway["domain"])
    )
    assert rendered == routing.model_host("churn-model") == "churn-model-serving.models.internal"


# --- the shipped stacks -----------------------------------------------------------------------------------------


def _by_name(plan: Plan, name: str) -> PlannedResource:
    (found,) = [r for r in plan.resources if r.name == name]
    return found


def _needs(plan: Plan, name: str) -> set[str]:
    return set(_by_name(plan, name).options.get("dependsOn", []))


@pytest.mark.parametrize(
    ("stack", "weights"),
    [
        ("prod", [("churn-model-predictor", 90), ("churn-model-canary-predictor", 10)]),
        ("staging", [("churn-model-predictor", 80), ("churn-model-canary-predictor", 20)]),
        ("dev", [("churn-model-predictor", 100)]),
    ],
)
def test_the_plan_shows_the_canary_weights_where_they_are_enforced(
    plans: dict[str, Plan], stack: str, weights: list[tuple[str, int]]
) -> None:
    plan = plans[stack]
    route = _by_name(plan, "serving-route-churn-model")
    (rule,) = route.inputs["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == weights
    assert {b["port"] for b in rule["backendRefs"]} == {80}
    isvc = object_of(_by_name(plan, "serving-isvc-churn-model"))
    assert [c["trafficPercent"] for c in isvc["spec"].get("canary", [])] == [w for _, w in weights[1:]]
    # validated against the Gateway API CRDs by the schema gate, as `mlp plan` runs it
    names = {"serving-route-churn-model", "serving-gateway", "serving-gateway-class"}
    report = check_plan(plan)
    assert [str(e) for e in report.errors if e.resource in names] == []
    assert validate_custom_resource(object_of(route)) == []
    # `mlp plan`'s table names the split
    shares = ", ".join(f"{name} {weight}%" for name, weight in weights)
    assert key_settings(route) == f"churn-model-serving.models.internal -> {shares}"


def test_envoy_gateway_is_pinned_on_the_system_nodes_with_two_proxies_in_prod(plans: dict[str, Plan]) -> None:
    release = _by_name(plans["prod"], "serving-envoy-gateway").inputs
    chart = versions.chart("gateway-helm")
    assert (release["chart"], release["version"]) == ("oci://docker.io/envoyproxy/gateway-helm", chart.version)
    assert release["version"] == "v1.9.0" and release["namespace"] == "envoy-gateway-system"
    values = release["values"]
    # the pinned images, through prod's image cache (Docker Hub's rule)
    cache = "444455556666.dkr.ecr.us-east-1.amazonaws.com/mlp-prod/docker-hub"
    assert values["global"]["images"]["envoyGateway"]["image"] == f"{cache}/envoyproxy/gateway:v1.9.0"
    proxy = values["config"]["envoyGateway"]["envoyProxy"]["provider"]["kubernetes"]
    assert proxy["envoyDeployment"]["container"]["image"] == f"{cache}/envoyproxy/envoy:distroless-v1.39.0"
    assert proxy["envoyDeployment"]["replicas"] == 2 and proxy["envoyPDB"] == {"maxUnavailable": 1}
    assert values["deployment"]["pod"]["nodeSelector"] == {"node.mlplatform.io/role": "system"}
    dev = _by_name(plans["dev"], "serving-envoy-gateway").inputs["values"]["config"]["envoyGateway"]
    assert dev["envoyProxy"]["provider"]["kubernetes"]["envoyDeployment"]["replicas"] == 1
    namespace = object_of(_by_name(plans["prod"], "serving-envoy-gateway-namespace"))["metadata"]
    assert namespace["name"] == "envoy-gateway-system"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_crds_come_first_and_envoy_gateway_outlives_its_class(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    crds = {f"serving-gateway-api-{p}" for p in routing.GATEWAY_API_CRDS}
    assert {r.name for r in plan.resources if r.type.endswith(":CustomResourceDefinition")} == crds
    assert crds <= _needs(plan, "serving-envoy-gateway")
    assert {"serving-envoy-gateway", *crds} <= _needs(plan, "serving-gateway-class")
    assert {"serving-gateway-class", "serving-namespace"} <= _needs(plan, "serving-gateway")
    assert _needs(plan, "serving-route-churn-model") == {
        "serving-gateway",
        "serving-isvc-churn-model",
    }
    report = check_order(plan)
    assert report.creation == () and report.deletion == ()
    controller = FINALIZED_BY[("gateway.networking.k8s.io", "GatewayClass")]
    assert (controller.chart, controller.finalizer) == (
        "gateway-helm",
        "gateway-exists-finalizer.gateway.networking.k8s.io",
    )


def test_a_gateway_class_that_does_not_depend_on_envoy_gateway_is_a_deletion_violation() -> None:
    def build() -> None:
        provider = pulumi.ResourceOptions(provider=k8s.Provider("k8s", kubeconfig="{}"))
        helm_release("eg", "gateway-helm", "envoy-gateway-system", {}, provider)
        custom_resource("class", routing.gateway_class(labels={}), provider)

    (violation,) = check_order(plan_component(build)).deletion
    assert (violation.resource, violation.target, violation.value) == (
        "class",
        "eg",
        "gateway-exists-finalizer.gateway.networking.k8s.io",
    )


@pytest.mark.parametrize("wired", [False, True])
def test_a_route_and_a_gateway_depend_on_what_they_name(wired: bool) -> None:
    def build() -> None:
        opts = pulumi.ResourceOptions(provider=k8s.Provider("k8s", kubeconfig="{}"))
        gateway_class = custom_resource("class", routing.gateway_class(labels={}), opts)
        after_class = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[gateway_class]))
        gateway = custom_resource("gateway", routing.gateway(labels={}), after_class if wired else opts)
        after_gateway = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[gateway]))
        custom_resource("route", routing.http_route(_isvc(), labels={}), after_gateway if wired else opts)

    violations = check_order(plan_component(build)).creation
    expected = (
        []
        if wired
        else [("gateway", "spec.gatewayClassName", "class"), ("route", "spec.parentRefs[0].name", "gateway")]
    )
    assert sorted((v.resource, v.path, v.target) for v in violations) == expected
