"""Pure builders for how requests reach InferenceServices: the Gateway API CRDs the platform installs, Envoy
Gateway's chart values, the internal GatewayClass and Gateway, and one HTTPRoute per InferenceService whose
weighted backends enforce its canary split. No resources.

Why the platform writes the routes: KServe v0.20.0 in Standard mode does not route canary traffic. Its
`spec.canary[]` only runs the candidate as a Deployment and Service of its own (`{isvc}-{canary}-predictor`);
`predictor.canaryTrafficPercent` is read by the Knative reconciler only; and the HTTPRoute its Gateway API
reconciler would write (`reconcilers/ingress/httproute_reconciler.go@v0.20.0`) has one unweighted backend, the
stable predictor Service. Weighted backends landed upstream after v0.20.0 (kserve#5912, in no release of 2026-08).
So KServe's own route creation stays off (`disableIngressCreation`, and `enableGatewayApi: false`), and exactly one
route, this one, owns each model's host.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from mlplatform.infra.serving.documents import CANARY_PREDICTOR, SERVING_NAMESPACE, InferenceServiceSpec

if TYPE_CHECKING:
    from mlplatform.infra.registry.documents import ImageRef

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = "v1.6.1"
"""The Gateway API release Envoy Gateway v1.9.0 is built on (its compatibility matrix; its chart bundles v1.6.1)."""
GATEWAY_API_CRDS = ("gatewayclasses", "gateways", "httproutes", "referencegrants")
"""The standard-channel CRDs the platform installs: the kinds it creates, and ReferenceGrant, which Envoy Gateway
v1.9.0 watches unconditionally (`internal/provider/kubernetes/controller.go`). Every other Gateway API and Envoy
Gateway kind is optional there: the controller checks for its CRD at start and skips the watch when absent."""

ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system"
ENVOY_GATEWAY_RELEASE = "eg"
ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
"""The chart's default `config.envoyGateway.gateway.controllerName`; a GatewayClass naming it is Envoy Gateway's."""
GATEWAY_CLASS = "envoy-internal"
GATEWAY_NAME = "models"
GATEWAY_LISTENER = "http"
GATEWAY_PORT = 80
ENVOY_CONTAINER_PORT = GATEWAY_PORT + 10000
"""What the Envoy pods listen on: Envoy Gateway shifts a privileged listener port (below 1024) up by 10000 so
Envoy needs no NET_BIND_SERVICE (`servicePortToContainerPort`, `internal/gatewayapi/listener.go@v1.9.0`). A
NetworkPolicy sees this port, not the Service's."""

MODEL_DOMAIN = "models.internal"
"""Hosts of the models behind the Gateway: `<isvc>-<namespace>.models.internal`, KServe's default domain template
over this domain, so an InferenceService's `status.url` is the host its route answers. ICANN reserved `.internal`
for private use (2024), so it never resolves on the Internet; clients send it as the Host header to the Gateway's
Service, which is the only name they resolve."""

PREDICTOR_SERVICE_PORT = 80
"""The port of every predictor Service KServe v0.20.0 makes in Standard mode (`constants.CommonDefaultHttpPort`,
`createDefaultSvc` in `reconcilers/service/service_reconciler.go`); it targets the model server's container port."""

REQUEST_TIMEOUT = "60s"
"""The request timeout KServe v0.20.0 gives its own routes (`DefaultTimeout`). Without one Envoy Gateway v1.9.0 sets
no route timeout (`getEffectiveRequestTimeout`) and Envoy's default of 15 s applies."""


def predictor_service(isvc: str, predictor: str | None = None) -> str:
    """The Service KServe v0.20.0 makes for a predictor in Standard mode: `constants.PredictorServiceName`,
    `{isvc}-predictor` for the stable one (no name), `{isvc}-{name}-predictor` for a named canary."""
    return f"{isvc}-{predictor}-predictor" if predictor else f"{isvc}-predictor"


def model_host(isvc: str, namespace: str = SERVING_NAMESPACE, domain: str = MODEL_DOMAIN) -> str:
    """The host an InferenceService answers on behind the Gateway: KServe's default `domainTemplate`
    (`{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}`), the same as its `status.url`."""
    return f"{isvc}-{namespace}.{domain}"


def envoy_resource_name(infra_name: str) -> str:
    """How Envoy Gateway v1.9.0 names a proxy fleet's Deployment, Service and ServiceAccount in its own namespace
    (`proxy.ExpectedResourceHashedName` over `utils.GetHashedName(name, 48)`): `envoy-`, the infra name with `/`
    as `-` (cut to 48 characters, a trailing `-` dropped), `-`, the first 8 hex digits of its sha256."""
    digest = hashlib.sha256(infra_name.encode()).hexdigest()[:8]
    name = infra_name.replace("/", "-")
    if len(name) > 48:
        name = name[:48].removesuffix("-")
    return f"envoy-{name}-{digest}"


def envoy_service_name(namespace: str = SERVING_NAMESPACE, gateway: str = GATEWAY_NAME) -> str:
    """The Service of a Gateway's proxies: its infra name is `<namespace>/<gateway>` (`irStringKey`) unless
    Gateways are merged, which the platform does not do."""
    return envoy_resource_name(f"{namespace}/{gateway}")


def gateway_address(namespace: str = SERVING_NAMESPACE, gateway: str = GATEWAY_NAME) -> str:
    """The in-cluster DNS name clients call (port 80), with a model's host as the Host header."""
    return f"{envoy_service_name(namespace, gateway)}.{ENVOY_GATEWAY_NAMESPACE}.svc.cluster.local"


def backend_weights(spec: InferenceServiceSpec) -> list[tuple[str, int]]:
    """(predictor Service, weight) of an InferenceService's route: `100 - p` to the stable predictor and `p` to
    the canary, or everything to the stable predictor without one. Envoy splits requests in proportion to the
    weights (`weight / sum`), per request."""
    stable = predictor_service(spec.name)
    percent = spec.canary_percent
    if not percent:
        return [(stable, 100)]
    return [(stable, 100 - percent), (predictor_service(spec.name, CANARY_PREDICTOR), percent)]


def gateway_class(labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GATEWAY_API_GROUP}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS, "labels": dict(labels)},
        "spec": {
            "controllerName": ENVOY_GATEWAY_CONTROLLER,
            # At most 64 characters (the CRD's maxLength).
            "description": "Envoy Gateway, in-cluster only (ClusterIP, no load balancer)",
        },
    }


def gateway(labels: Mapping[str, str], domain: str = MODEL_DOMAIN) -> dict[str, Any]:
    """The models' Gateway in the serving namespace: plain HTTP on port 80 for hosts under `domain`, routes from
    its own namespace only (a team cannot attach a route to it). Reachable inside the cluster only: Envoy Gateway's
    default EnvoyProxy makes its Service a ClusterIP (`envoy_gateway_values`)."""
    return {
        "apiVersion": f"{GATEWAY_API_GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY_NAME, "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [
                {
                    "name": GATEWAY_LISTENER,
                    "protocol": "HTTP",
                    "port": GATEWAY_PORT,
                    "hostname": f"*.{domain}",
                    "allowedRoutes": {
                        "namespaces": {"from": "Same"},
                        "kinds": [{"group": GATEWAY_API_GROUP, "kind": "HTTPRoute"}],
                    },
                }
            ],
        },
    }


def route_name(isvc: str) -> str:
    """Not the InferenceService's own name: KServe names its routes after the service, and would take this one
    over if its Gateway API reconciler were ever switched on."""
    return f"{isvc}-traffic"


def http_route(spec: InferenceServiceSpec, labels: Mapping[str, str], domain: str = MODEL_DOMAIN) -> dict[str, Any]:
    """One route per InferenceService, whether it has a canary or not, so clients keep one address when a canary
    comes and goes: the model's host, every path, to its predictor Services by weight."""
    return {
        "apiVersion": f"{GATEWAY_API_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": route_name(spec.name), "namespace": SERVING_NAMESPACE, "labels": dict(labels)},
        "spec": {
            "parentRefs": [
                {
                    "group": GATEWAY_API_GROUP,
                    "kind": "Gateway",
                    "namespace": SERVING_NAMESPACE,
                    "name": GATEWAY_NAME,
                    "sectionName": GATEWAY_LISTENER,
                }
            ],
            "hostnames": [model_host(spec.name, domain=domain)],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"kind": "Service", "name": service, "port": PREDICTOR_SERVICE_PORT, "weight": weight}
                        for service, weight in backend_weights(spec)
                    ],
                    "timeouts": {"request": REQUEST_TIMEOUT},
                }
            ],
        },
    }


# --- Envoy Gateway ----------------------------------------------------------------------------------------------


def envoy_gateway_values(
    *,
    node_selector: Mapping[str, str],
    gateway_image: ImageRef,
    proxy_image: ImageRef,
    proxy_replicas: int,
) -> dict[str, Any]:
    """gateway-helm v1.9.0 chart values.

    - No CRDs from the chart (`crds.enabled: false`): its bundle is the Gateway API *experimental* channel, placed
      in a subchart's `crds/` folder, which Helm installs once and never upgrades; the platform installs the
      standard-channel CRDs itself (`gateway_api_crds`). Envoy Gateway's own CRDs are not needed: the controller
      skips the watch of each one that is absent, and the proxies are configured below instead of by an EnvoyProxy.
    - Pinned images: the controller (also the proxies' shutdown manager: `eg.image` in the chart's helpers) and the
      Envoy proxy.
    - The default EnvoyProxy of the controller's configuration (`config.envoyGateway.envoyProxy`, the base every
      Gateway's proxies start from): a ClusterIP Service, so no Gateway ever gets a load balancer (the Envoy Gateway
      default is LoadBalancer: on EKS an AWS load balancer, internet-facing when the legacy cloud provider makes it);
      proxies on the system nodes, `proxy_replicas` of them, spread over nodes, with a disruption budget when there
      are two or more.
    """
    selector = dict(node_selector)
    deployment: dict[str, Any] = {
        "replicas": proxy_replicas,
        "pod": {"nodeSelector": selector},
        "container": {
            "image": proxy_image,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        },
    }
    kubernetes: dict[str, Any] = {"envoyService": {"type": "ClusterIP"}, "envoyDeployment": deployment}
    if proxy_replicas > 1:
        deployment["pod"]["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": proxy_selector()},
            }
        ]
        kubernetes["envoyPDB"] = {"maxUnavailable": 1}
    return {
        "crds": {"enabled": False},
        "global": {"images": {"envoyGateway": {"image": gateway_image}}},
        "deployment": {
            "replicas": 1,
            "pod": {"nodeSelector": selector},
            "envoyGateway": {
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            },
        },
        "certgen": {"job": {"nodeSelector": selector}},
        "config": {
            "envoyGateway": {
                "gateway": {"controllerName": ENVOY_GATEWAY_CONTROLLER},
                "provider": {"type": "Kubernetes"},
                "envoyProxy": {"provider": {"type": "Kubernetes", "kubernetes": kubernetes}},
            }
        },
    }


def proxy_selector(namespace: str = SERVING_NAMESPACE, gateway: str = GATEWAY_NAME) -> dict[str, str]:
    """Labels Envoy Gateway v1.9.0 puts on a Gateway's proxy pods (`GatewayOwnerLabels`)."""
    return {
        "gateway.envoyproxy.io/owning-gateway-namespace": namespace,
        "gateway.envoyproxy.io/owning-gateway-name": gateway,
    }


# --- Gateway API CRDs -------------------------------------------------------------------------------------------


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML has it (a tenth of the time for these 650 kB), else the pure-Python one."""


@cache
def _crd_text(plural: str) -> str:
    folder = resources.files("mlplatform.infra.serving").joinpath("data", f"gateway-api-{GATEWAY_API_VERSION}")
    return folder.joinpath(f"{GATEWAY_API_GROUP}_{plural}.yaml").read_text(encoding="utf-8")


def gateway_api_crds() -> list[dict[str, Any]]:
    """The standard-channel CRDs of `GATEWAY_API_CRDS`, as published (kubernetes-sigs/gateway-api
    `config/crd/standard` at v1.6.1; the same documents Envoy Gateway v1.9.0's gateway-crds-helm renders for the
    standard channel). A fresh copy per call: the caller may hand it to Pulumi."""
    crds = [yaml.load(_crd_text(plural), Loader=_YAML_LOADER) for plural in GATEWAY_API_CRDS]
    for crd in crds:
        channel = crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"]
        bundle = crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
        if (channel, bundle) != ("standard", GATEWAY_API_VERSION):
            name = crd["metadata"]["name"]
            raise ValueError(f"{name}: {channel} channel {bundle}, not standard {GATEWAY_API_VERSION}")
    return crds
