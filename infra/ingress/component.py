"""The AWS Load Balancer Controller (cluster layer), installed when an ingress needs it. Its Pod Identity role is
`infra.ingress.cloud.LoadBalancerControllerCloud`, in the cloud layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra.ingress import documents
from mlplatform.infra.k8s_resources import helm_release

COMPONENT_TYPE = "mlplatform:ingress:LoadBalancerController"


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerArgs:
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    replicas: int = 2
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    depends_on: Sequence[pulumi.Resource] = ()
    """The controller's Pod Identity role when it is created in the same program."""
    internet_facing_namespaces: Sequence[str] = ()
    """Namespaces whose Ingresses may have an internet-facing ALB (config `ingress.internet_facing_namespaces`);
    every other load balancer is internal."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Cost labels of the cluster-wide objects (IngressClass, admission policy)."""


class LoadBalancerController(pulumi.ComponentResource):
    """Needs the `kubernetes` provider in `opts.providers`."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.release = helm_release(
            f"{name}-release",
            "aws-load-balancer-controller",
            documents.NAMESPACE,
            pulumi.Output.all(args.cluster_name, args.vpc_id).apply(
                lambda v: documents.controller_values(
                    cluster_name=v[0],
                    region=args.region,
                    vpc_id=v[1],
                    replicas=args.replicas,
                    node_selector=args.system_node_selector,
                    default_tags=args.cost_tags,
                )
            ),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        if args.internet_facing_namespaces:
            self._create_internet_facing_class(name, args)
        self.register_outputs({})

    def _create_internet_facing_class(self, name: str, args: LoadBalancerControllerArgs) -> None:
        params, ingress_class = documents.internet_facing_class(args.internet_facing_namespaces, args.labels)
        # The IngressClassParams CRD comes with the chart (its crds/ folder): the release first.
        created = k8s.apiextensions.CustomResource(
            f"{name}-internet-facing-params",
            api_version=params["apiVersion"],
            kind=params["kind"],
            metadata=params["metadata"],
            spec=params["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        k8s.networking.v1.IngressClass(
            f"{name}-internet-facing-class",
            metadata=ingress_class["metadata"],
            spec=ingress_class["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
        )


def create_load_balancer_guard(
    name: str, *, internet_facing_namespaces: Sequence[str], labels: Mapping[str, str], opts: pulumi.ResourceOptions
) -> k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding:
    """The admission policy that keeps Services of type LoadBalancer internal outside `internet_facing_namespaces`
    (`documents.load_balancer_admission_policy`). Created whether or not the controller is installed: without it,
    EKS's cloud controller would make an internet-facing Classic Load Balancer for such a Service."""
    policy, binding = documents.load_balancer_admission_policy(internet_facing_namespaces, labels)
    created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
        f"{name}-internal-policy", metadata=policy["metadata"], spec=policy["spec"], opts=opts
    )
    return k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
        f"{name}-internal-policy-binding",
        metadata=binding["metadata"],
        spec=binding["spec"],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[created])),
    )
