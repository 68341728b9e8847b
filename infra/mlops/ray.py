"""Ray on Kubernetes: the KubeRay operator (pinned chart) and one RayCluster per configured entry, with a Pod
Identity role that reads the lake's datasets and writes under its own prefix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam_documents import S3Grant, s3_access_policy
from infra.k8s_documents import pod_security_labels
from infra.k8s_resources import custom_resource, helm_release, pod_identity_role
from infra.mlops import documents
from infra.mlops.documents import RAY_NAMESPACE, RAY_OPERATOR_NAMESPACE, RAY_SERVICE_ACCOUNT, RayClusterSpec

COMPONENT_TYPE = "mlplatform:mlops:Ray"
RAY_PREFIX = "ray/"


@dataclass(frozen=True, kw_only=True)
class LakeAccess:
    """Buckets a workload reads (whole) and the bucket it writes under its own prefix."""

    read_bucket_arns: Sequence[pulumi.Input[str]] = ()
    write_bucket_arn: pulumi.Input[str] | None = None
    key_arn: pulumi.Input[str] = ""


@dataclass(frozen=True, kw_only=True)
class RayArgs:
    cluster_name: str
    clusters: Sequence[RayClusterSpec]
    lake: LakeAccess
    operator_replicas: int = 1
    cost_tags: Mapping[str, str] = field(default_factory=dict)
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    system_node_selector: Mapping[str, str] = field(default_factory=lambda: {"node.mlplatform.io/role": "system"})
    depends_on: Sequence[pulumi.Resource] = ()
    """Node pools (their CRDs and Karpenter) the workers are scheduled on."""


class Ray(pulumi.ComponentResource):
    """KubeRay and Ray clusters. Needs the `aws` and `kubernetes` providers in `opts.providers`."""

    def __init__(self, name: str, args: RayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        labels = {**args.cost_labels, "app.kubernetes.io/part-of": "ml-platform"}
        # The operator gets Roles in this namespace only (it must exist before the operator).
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": RAY_NAMESPACE, "labels": {**labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        operator_ns = k8s.core.v1.Namespace(
            f"{name}-operator-namespace",
            metadata={"name": RAY_OPERATOR_NAMESPACE, "labels": {**labels, **pod_security_labels("restricted")}},
            opts=self._child,
        )
        self.operator = helm_release(
            f"{name}-kuberay-operator",
            "kuberay-operator",
            RAY_OPERATOR_NAMESPACE,
            documents.kuberay_operator_values(
                replicas=args.operator_replicas, node_selector=args.system_node_selector, labels=labels
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[operator_ns, self.namespace]),
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={"name": RAY_SERVICE_ACCOUNT, "namespace": RAY_NAMESPACE, "labels": labels},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.pod_identity = self._create_identity()
        self.cluster_names: list[str] = []
        for spec in args.clusters:
            custom_resource(
                f"{name}-{spec.name}",
                documents.ray_cluster(spec, labels),
                pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.operator, self.namespace, self.pod_identity, *args.depends_on],
                ),
            )
            self.cluster_names.append(spec.name)
        self.register_outputs({"clusters": self.cluster_names})

    def _create_identity(self) -> aws.eks.PodIdentityAssociation:
        name, args = self._name, self._args
        lake = args.lake
        read = list(lake.read_bucket_arns)
        write = [lake.write_bucket_arn] if lake.write_bucket_arn is not None else []

        def policy(values: list[str]) -> str:
            key, *arns = values
            reads, writes = arns[: len(read)], arns[len(read) :]
            grants = [S3Grant(arn) for arn in reads] + [S3Grant(arn, RAY_PREFIX, write=True) for arn in writes]
            return s3_access_policy(grants, key_arn=key)

        return pod_identity_role(
            name,
            cluster_name=args.cluster_name,
            namespace=RAY_NAMESPACE,
            service_account=RAY_SERVICE_ACCOUNT,
            description=f"{args.cluster_name}: Ray pods (Pod Identity): read the lake, write under {RAY_PREFIX}",
            policy=pulumi.Output.all(lake.key_arn, *read, *write).apply(policy),
            tags=args.cost_tags,
            opts=self._child,
        )
