"""Model serving, the Kubernetes side (cluster layer): cert-manager and KServe in Standard (raw Deployment) mode
with InferenceServices and a vLLM ServingRuntime; Envoy Gateway with an in-cluster Gateway and one weighted
HTTPRoute per InferenceService (the canary split: `infra.serving.routing`); vLLM OpenAI-compatible servers as
Deployments scaled by KEDA on queued requests.

Models come from the models zone of the lake through Pod Identity roles that read only the configured prefixes
(`infra.serving.cloud.ServingCloud`, cloud layer); hub tokens are read from Secrets Manager inside the pod, never
by Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra import platform_policies
from mlplatform.infra import platform_policy_resources as policy_resources
from mlplatform.infra.catalog import versions
from mlplatform.infra.k8s_documents import pod_security_labels, service
from mlplatform.infra.k8s_resources import custom_resource, helm_release
from mlplatform.infra.mlops.documents import MLFLOW_IN_CLUSTER_URL
from mlplatform.infra.registry.documents import ImageCache
from mlplatform.infra.serving import documents, routing
from mlplatform.infra.serving.documents import (
    CERT_MANAGER_NAMESPACE,
    KEDA_NAMESPACE,
    KSERVE_NAMESPACE,
    MODEL_SERVICE_ACCOUNT,
    SERVING_NAMESPACE,
    VLLM_PORT,
    InferenceServiceSpec,
    VllmServer,
)

if TYPE_CHECKING:
    from mlplatform.infra.platform_policies import ClusterAddresses

COMPONENT_TYPE = "mlplatform:serving:Serving"


InferenceServiceArgs = InferenceServiceSpec
"""The component takes the builder's spec as it is (storage paths in the models bucket)."""


@dataclass(frozen=True, kw_only=True)
class ServingArgs:
    region: str
    models_bucket_name: pulumi.Input[str]
    raw_bucket_name: pulumi.Input[str] | None = None
    """The lake's raw bucket, where InferenceServices with `request_log` log their requests."""
    install_kserve: bool = True
    inference_services: Sequence[InferenceServiceArgs] = ()
    vllm_servers: Sequence[VllmServer] = ()
    """models_bucket is filled in by the component."""
    vllm_image: pulumi.Input[str] = field(default_factory=lambda: versions.image("vllm"))
    aws_cli_image: pulumi.Input[str] = field(default_factory=lambda: versions.image("aws-cli"))
    feature_server: bool = False
    """The feature store's server runs (`infra.features`): the namespace's pods may reach it."""
    registry_resolver_image: str | None = None
    """The steps' image (`pipelines.templates.image`): the `models:/` ClusterStorageContainer runs its resolver.
    Required when an InferenceService names a model_uri."""
    mlflow_tracking_uri: str = MLFLOW_IN_CLUSTER_URL
    """The MLflow the resolver asks (the in-cluster service)."""
    mlflow_auth: bool = False
    """MLflow's basic auth is on: the resolver signs in with the `mlflow-registry-reader` Secret's user."""
    registry_reader_secret: Callable[[pulumi.Resource], pulumi.Resource] | None = None
    """Makes the Secret `mlflow-registry-reader` the resolver signs in with, given the serving namespace
    (`infra.mlops.MlflowAccounts.credentials_secret`); the pods that use it are made after it."""
    prometheus_url: str | None = None
    """Prometheus that KEDA queries; None: no autoscaling (vLLM servers run min_replicas)."""
    controller_replicas: int = 1
    model_domain: str = routing.MODEL_DOMAIN
    """InferenceServices answer behind the Gateway on `<name>-serving.<model_domain>` (the Host header)."""
    keeps_serving: bool = False
    """Staging and prod: two Envoy proxies on different nodes with a disruption budget, so the models' address
    survives a node drain. False (dev): one proxy."""
    envoy_gateway_image: pulumi.Input[str] = field(default_factory=lambda: versions.image("envoy-gateway"))
    envoy_proxy_image: pulumi.Input[str] = field(default_factory=lambda: versions.image("envoy-proxy"))
    image_cache: ImageCache | None = None
    """Pull the charts' default images through the platform's ECR cache where their keys are known (the images
    above come in already rewritten)."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    pool_label: str = "mlplatform.io/gpu-pool"
    depends_on: Sequence[pulumi.Resource] = ()
    """Node pools the model servers are scheduled on; in a one-program setup also their Pod Identity roles
    (`ServingCloud`)."""
    addresses: pulumi.Input[ClusterAddresses] = field(default_factory=lambda: platform_policies.ClusterAddresses())
    """What the namespaces' NetworkPolicies name (the private subnets, the interface endpoints)."""


class Serving(pulumi.ComponentResource):
    """KServe, vLLM and KEDA for one cluster. Needs the `kubernetes` provider in `opts.providers`."""

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": SERVING_NAMESPACE, "labels": {**self._labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        self._kserve: list[pulumi.Resource] = []
        self._isvcs: dict[str, pulumi.Resource] = {}
        """The InferenceServices by name (a team's rollout grant waits for its own)."""
        self._vllm: dict[str, pulumi.Resource] = {}
        """The vLLM Deployments by server name (a team's rollout grant waits for its own)."""
        self.routes_models = args.install_kserve and bool(args.inference_services)
        self.registry_served = [svc for svc in args.inference_services if svc.model_uri] if args.install_kserve else []
        """InferenceServices whose model is a `models:/` URI, resolved through MLflow at pod start."""
        """Whether the InferenceServices are reached through the models' Gateway (Envoy Gateway installed)."""
        self._policies(SERVING_NAMESPACE, self.namespace, self._serving_policies)
        self._reader_secret = [args.registry_reader_secret(self.namespace)] if args.registry_reader_secret else []
        """The registry reader's Secret: registry-served pods name it, so it exists before them."""
        self.model_gateway_url = f"http://{routing.gateway_address()}" if self.routes_models else None
        """Where clients inside the cluster send model requests, with a model's host (`model_hosts`) as Host."""
        self.model_hosts = {
            svc.name: routing.model_host(svc.name, domain=args.model_domain)
            for svc in (args.inference_services if self.routes_models else ())
        }
        """InferenceService name -> the host its route answers (and its `status.url`)."""
        if args.install_kserve:
            self._install_kserve()
            self._create_inference_services()
            if self.routes_models:
                self._create_routes(self._install_gateway())
        self._keda: list[pulumi.Resource] = []
        if args.vllm_servers and args.prometheus_url:
            self._install_keda()
        for server in args.vllm_servers:
            self._create_vllm_server(server)
        self.register_outputs({})

    def _release(
        self, resource_name: str, chart_key: str, namespace: str, values: Any, depends_on: Sequence[pulumi.Resource]
    ) -> k8s.helm.v3.Release:
        return helm_release(
            resource_name,
            chart_key,
            namespace,
            values,
            pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
            image_cache=self._args.image_cache,
        )

    def _namespace(self, resource_name: str, namespace: str) -> k8s.core.v1.Namespace:
        created = k8s.core.v1.Namespace(
            resource_name,
            metadata={"name": namespace, "labels": {**self._labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        builds = {
            KSERVE_NAMESPACE: platform_policies.kserve_policies,
            CERT_MANAGER_NAMESPACE: platform_policies.cert_manager_policies,
            KEDA_NAMESPACE: platform_policies.keda_policies,
            routing.ENVOY_GATEWAY_NAMESPACE: platform_policies.envoy_gateway_policies,
        }
        build = builds[namespace]
        self._policies(namespace, created, lambda a: build(a, self._labels))
        return created

    def _policies(
        self,
        namespace: str,
        created: pulumi.Resource,
        build: Callable[[ClusterAddresses], list[dict[str, Any]]],
    ) -> None:
        """Default deny and the namespace's allowlist (`infra.platform_policies`)."""
        policy_resources.network_policies(f"{self._name}-{namespace}", build, self._args.addresses, created, self)

    def _serving_policies(self, addresses: ClusterAddresses) -> list[dict[str, Any]]:
        registry = bool(self.registry_served) or any(s.source == "registry" for s in self._args.vllm_servers)
        return platform_policies.serving_policies(
            addresses,
            self._labels,
            gateway=self.routes_models,
            registry=registry,
            feature_server=self._args.feature_server,
        )

    # -- KServe --------------------------------------------------------------------------------------------------

    def _install_kserve(self) -> None:
        name, args = self._name, self._args
        selector = args.system_node_selector
        cm_ns = self._namespace(f"{name}-cert-manager-namespace", CERT_MANAGER_NAMESPACE)
        cert_manager = self._release(
            f"{name}-cert-manager",
            "cert-manager",
            CERT_MANAGER_NAMESPACE,
            documents.cert_manager_values(selector),
            [cm_ns],
        )
        ks_ns = self._namespace(f"{name}-kserve-namespace", KSERVE_NAMESPACE)
        crds = self._release(f"{name}-kserve-crd", "kserve-crd", KSERVE_NAMESPACE, {}, [ks_ns])
        controller = self._release(
            f"{name}-kserve",
            "kserve-resources",
            KSERVE_NAMESPACE,
            documents.kserve_values(node_selector=selector, region=args.region, domain=args.model_domain),
            # The KServe webhooks take their certificates from cert-manager.
            [ks_ns, crds, cert_manager],
        )
        runtimes = self._release(
            f"{name}-kserve-runtimes",
            "kserve-runtime-configs",
            KSERVE_NAMESPACE,
            documents.kserve_runtime_values(),
            [crds, controller],
        )
        self._kserve = [crds, controller, runtimes]

    def _create_inference_services(self) -> None:
        name, args = self._name, self._args
        after_kserve = [self.namespace, *self._kserve]
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-model-service-account",
            metadata={"name": MODEL_SERVICE_ACCOUNT, "namespace": SERVING_NAMESPACE, "labels": self._labels},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        custom_resource(
            f"{name}-vllm-runtime",
            documents.vllm_serving_runtime(image=args.vllm_image, labels=self._labels),
            pulumi.ResourceOptions(parent=self, depends_on=after_kserve),
        )
        resolver = self._create_registry_resolver(after_kserve)
        for svc in args.inference_services:
            spec = pulumi.Output.all(args.models_bucket_name, args.raw_bucket_name or "").apply(self._isvc_spec_of(svc))
            registry = [resolver, *self._reader_secret] if svc.model_uri and resolver is not None else []
            self._isvcs[svc.name] = k8s.apiextensions.CustomResource(
                f"{name}-isvc-{svc.name}",
                api_version="serving.kserve.io/v1beta1",
                kind="InferenceService",
                metadata={
                    "name": svc.name,
                    "namespace": SERVING_NAMESPACE,
                    "labels": self._labels,
                    "annotations": {documents.DEPLOYMENT_MODE_ANNOTATION: documents.DEPLOYMENT_MODE},
                },
                spec=spec,
                # KServe finalizes InferenceServices (it must outlive them); the storage initializer runs as `sa`.
                # A registry-served model: KServe's webhook needs the ClusterStorageContainer when the pods are
                # made, and the promote template owns the predictor's annotations (a rollout after a promotion),
                # which the next `pulumi up` must not take back.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*after_kserve, sa, *registry, *args.depends_on],
                    ignore_changes=[documents.PIPELINE_OWNED_FIELD] if svc.model_uri else None,
                ),
            )

    def vllm_server_ready(self, name: str) -> list[pulumi.Resource]:
        """What a grant on one vLLM server's Deployment waits for: the serving namespace and the Deployment."""
        return [self.namespace, self._vllm[name]]

    def inference_service_ready(self, name: str) -> list[pulumi.Resource]:
        """What a grant on one InferenceService waits for: the serving namespace and the InferenceService."""
        return [self.namespace, self._isvcs[name]]

    def _create_registry_resolver(self, after_kserve: Sequence[pulumi.Resource]) -> pulumi.Resource | None:
        """The `models:/` ClusterStorageContainer, when an InferenceService names a registry URI."""
        args = self._args
        if not self.registry_served:
            return None
        if args.registry_resolver_image is None:
            raise ValueError("an InferenceService names a models:/ URI and no registry_resolver_image is given")
        manifest = documents.registry_storage_container(
            image=args.registry_resolver_image,
            tracking_uri=args.mlflow_tracking_uri,
            labels=self._labels,
            mlflow_auth=args.mlflow_auth,
        )
        return custom_resource(
            f"{self._name}-registry-storage-container",
            manifest,
            pulumi.ResourceOptions(parent=self, depends_on=list(after_kserve)),
        )

    # -- routes: Envoy Gateway, the Gateway, one HTTPRoute per InferenceService ---------------------------------

    def _install_gateway(self) -> pulumi.Resource:
        """Gateway API CRDs, Envoy Gateway, the GatewayClass and the models' Gateway; returns the Gateway."""
        name, args = self._name, self._args
        crds = [
            k8s.apiextensions.v1.CustomResourceDefinition(
                f"{name}-gateway-api-{crd['spec']['names']['plural']}",
                # Upstream's definition as shipped, plus the platform's cost labels (every object carries them).
                metadata=_with_labels(crd["metadata"], self._labels),
                spec=crd["spec"],
                opts=self._child,
            )
            for crd in routing.gateway_api_crds()
        ]
        ns = self._namespace(f"{name}-envoy-gateway-namespace", routing.ENVOY_GATEWAY_NAMESPACE)
        controller = helm_release(
            f"{name}-envoy-gateway",
            "gateway-helm",
            routing.ENVOY_GATEWAY_NAMESPACE,
            routing.envoy_gateway_values(
                node_selector=args.system_node_selector,
                gateway_image=args.envoy_gateway_image,
                proxy_image=args.envoy_proxy_image,
                proxy_replicas=2 if args.keeps_serving else 1,
            ),
            # The controller watches GatewayClasses, Gateways, HTTPRoutes and ReferenceGrants from its start.
            pulumi.ResourceOptions(parent=self, depends_on=[ns, *crds]),
            release_name=routing.ENVOY_GATEWAY_RELEASE,
        )
        # Custom resources after their CRDs; the class after Envoy Gateway, which finalizes it while a Gateway
        # uses it (and so must outlive it on destroy).
        gateway_class = custom_resource(
            f"{name}-gateway-class",
            routing.gateway_class(self._labels),
            pulumi.ResourceOptions(parent=self, depends_on=[*crds, controller]),
        )
        return custom_resource(
            f"{name}-gateway",
            routing.gateway(self._labels, domain=args.model_domain),
            pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, gateway_class, controller, *crds]),
        )

    def _create_routes(self, gateway: pulumi.Resource) -> None:
        name, args = self._name, self._args
        for svc in args.inference_services:
            custom_resource(
                f"{name}-route-{svc.name}",
                routing.http_route(svc, self._labels, domain=args.model_domain),
                # The route names the InferenceService's predictor Services (KServe makes them) and the Gateway
                # (and through it waits for the CRDs and Envoy Gateway).
                pulumi.ResourceOptions(parent=self, depends_on=[gateway, self._isvcs[svc.name]]),
            )

    def _isvc_spec_of(self, svc: InferenceServiceSpec) -> Callable[[list[str]], dict[str, Any]]:
        """The InferenceService's spec from (models bucket, raw bucket or "")."""
        return lambda buckets: self._isvc_spec(svc, buckets[0], buckets[1] or None)

    def _isvc_spec(self, svc: InferenceServiceSpec, bucket: str, log_bucket: str | None) -> dict[str, Any]:
        manifest = documents.inference_service(
            svc, bucket=bucket, labels=self._labels, pool_label=self._args.pool_label, log_bucket=log_bucket
        )
        body: dict[str, Any] = manifest["spec"]
        return body

    # -- KEDA and vLLM -------------------------------------------------------------------------------------------

    def _install_keda(self) -> None:
        name, args = self._name, self._args
        ns = self._namespace(f"{name}-keda-namespace", KEDA_NAMESPACE)
        self._keda = [
            self._release(
                f"{name}-keda", "keda", KEDA_NAMESPACE, documents.keda_values(args.system_node_selector), [ns]
            )
        ]

    def _create_vllm_server(self, server: VllmServer) -> None:
        name, args = self._name, self._args
        key = f"{name}-vllm-{server.name}"
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        sa = k8s.core.v1.ServiceAccount(
            f"{key}-service-account",
            metadata={"name": server.service_account, "namespace": SERVING_NAMESPACE, "labels": self._labels},
            opts=after_ns,
        )
        manifest = pulumi.Output.from_input(args.models_bucket_name).apply(
            lambda bucket: documents.vllm_deployment(
                replace(server, models_bucket=bucket, region=args.region),
                image=args.vllm_image,
                aws_cli_image=args.aws_cli_image,
                labels=self._labels,
                pool_label=args.pool_label,
            )
        )
        autoscaled = bool(self._keda) and server.min_replicas != server.max_replicas
        deployment = k8s.apps.v1.Deployment(
            f"{key}-deployment",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    self.namespace,
                    sa,
                    *args.depends_on,
                    *(self._reader_secret if server.source == "registry" else []),
                ],
                # KEDA owns the replica count once the server runs; a promoted server's model-version annotation
                # is the promote template's (its rollout-vllm step), which the next `pulumi up` must not take back.
                ignore_changes=[
                    *(["spec.replicas"] if autoscaled else []),
                    *([documents.VLLM_PIPELINE_OWNED_FIELD] if server.promoted_by else []),
                ]
                or None,
                # A replica needs a GPU node, the image and weights, then the model load: wait for all of it.
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{server.rollout_minutes}m", update=f"{server.rollout_minutes}m"
                ),
            ),
        )
        self._vllm[server.name] = deployment
        svc = service(
            server.deployment_name,
            SERVING_NAMESPACE,
            server.selector,
            VLLM_PORT,
            {**self._labels, **server.selector},
        )
        k8s.core.v1.Service(f"{key}-service", metadata=svc["metadata"], spec=svc["spec"], opts=after_ns)
        pdb = documents.vllm_disruption_budget(server, self._labels)
        k8s.policy.v1.PodDisruptionBudget(f"{key}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=after_ns)
        if autoscaled:
            assert args.prometheus_url is not None
            custom_resource(
                f"{key}-scaler",
                documents.vllm_scaled_object(server, prometheus_url=args.prometheus_url, labels=self._labels),
                pulumi.ResourceOptions(parent=self, depends_on=[deployment, *self._keda]),
            )


def _with_labels(metadata: Mapping[str, Any], labels: Mapping[str, str]) -> k8s.meta.v1.ObjectMetaArgsDict:
    """Object metadata with labels added (the object's own win on a clash: they are upstream's)."""
    merged = {**metadata, "labels": {**labels, **(metadata.get("labels") or {})}}
    return cast("k8s.meta.v1.ObjectMetaArgsDict", merged)
