"""The feature store's AWS side (cloud layer): one DynamoDB table per served feature view and the two Pod Identity
roles (feature server, materializer). The Kubernetes side is `infra.features.component.FeatureStore`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.features import documents
from mlplatform.infra.features.documents import (
    FEAST_NAMESPACE,
    FEATURE_SERVER_SERVICE_ACCOUNT,
    HASH_KEY,
    MATERIALIZER_SERVICE_ACCOUNT,
    FeatureStoreSpec,
)
from mlplatform.infra.k8s_resources import pod_identity_role

COMPONENT_TYPE = "mlplatform:features:FeatureStoreCloud"


@dataclass(frozen=True, kw_only=True)
class FeatureStoreCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (the Pod Identity associations name it)."""
    spec: FeatureStoreSpec
    """`features_bucket` is unused here (the bucket's ARN below is an Output)."""
    features_bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    """The lake's key: the tables' encryption and the registry's objects."""
    protect: bool = False
    """Prod: deletion protection, point-in-time recovery, and Pulumi's protect/retainOnDelete on the tables."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class FeatureStoreCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    def __init__(self, name: str, args: FeatureStoreCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.tables = self._create_tables()
        self.server_identity, self.materializer_identity = self._create_identities()
        self.register_outputs({})

    def _create_tables(self) -> list[aws.dynamodb.Table]:
        name, args = self._name, self._args
        keep = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        return [
            aws.dynamodb.Table(
                f"{name}-{view.replace('_', '-')}",
                name=table,
                billing_mode="PAY_PER_REQUEST",  # nothing billed idle but storage
                hash_key=HASH_KEY,
                attributes=[{"name": HASH_KEY, "type": "S"}],
                server_side_encryption={"enabled": True, "kms_key_arn": args.key_arn},
                point_in_time_recovery={"enabled": args.protect},
                deletion_protection_enabled=args.protect,
                tags={**args.cost_tags, "mlplatform.io/feast-project": args.spec.project},
                opts=keep,
            )
            for view, table in zip(args.spec.views, args.spec.tables, strict=True)
        ]

    def _create_identities(self) -> tuple[aws.eks.PodIdentityAssociation, aws.eks.PodIdentityAssociation]:
        name, args = self._name, self._args
        spec = args.spec
        inputs = pulumi.Output.all(args.features_bucket_arn, args.key_arn, *[t.arn for t in self.tables])

        def policy(build: Callable[..., str]) -> pulumi.Output[str]:
            return inputs.apply(lambda v: build(spec, features_bucket_arn=v[0], key_arn=v[1], table_arns=list(v[2:])))

        server = pod_identity_role(
            f"{name}-server",
            cluster_name=args.cluster_name,
            namespace=FEAST_NAMESPACE,
            service_account=FEATURE_SERVER_SERVICE_ACCOUNT,
            description=f"{spec.label}: Feast feature server (Pod Identity): reads the registry and the online tables",
            policy=policy(documents.server_policy),
            tags=args.cost_tags,
            opts=self._child,
        )
        materializer = pod_identity_role(
            f"{name}-materializer",
            cluster_name=args.cluster_name,
            namespace=FEAST_NAMESPACE,
            service_account=MATERIALIZER_SERVICE_ACCOUNT,
            description=f"{spec.label}: Feast materialization and apply (Pod Identity): the registry, the offline "
            "files, writes to the online tables",
            policy=policy(documents.materializer_policy),
            tags=args.cost_tags,
            opts=self._child,
        )
        return server, materializer
