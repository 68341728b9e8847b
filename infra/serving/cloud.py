"""Model serving's AWS side (cloud layer): the Pod Identity roles of the model servers. KServe's model servers
read the configured model prefixes of the models zone; each vLLM server reads its own weights prefix (source
`lake`) and/or its hub token secret. The Kubernetes side is `infra.serving.component.Serving`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.iam_documents import S3Grant, s3_access_policy, secret_arn_pattern
from mlplatform.infra.k8s_resources import pod_identity_role
from mlplatform.infra.serving.documents import (
    MODEL_SERVICE_ACCOUNT,
    SERVING_NAMESPACE,
    InferenceServiceSpec,
    VllmServer,
    request_log_objects,
)

COMPONENT_TYPE = "mlplatform:serving:ServingCloud"


@dataclass(frozen=True, kw_only=True)
class ServingCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (the Pod Identity associations name it)."""
    label: str
    region: str
    models_bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    raw_bucket_arn: pulumi.Input[str] | None = None
    """The lake's raw bucket: InferenceServices with `request_log` write their requests there."""
    inference_services: Sequence[InferenceServiceSpec] = ()
    vllm_servers: Sequence[VllmServer] = ()
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class ServingCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    def __init__(self, name: str, args: ServingCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        self._partition, self._account_id = account.partition, account.account_id
        if args.inference_services:
            prefixes = sorted({p for svc in args.inference_services for p in svc.prefixes()})
            logged = sorted(
                request_log_objects(svc.request_log, svc.name) for svc in args.inference_services if svc.request_log
            )
            if logged and args.raw_bucket_arn is None:
                raise ValueError("InferenceServices with request_log need ServingCloudArgs.raw_bucket_arn")
            # KServe's storage initializer calls HeadBucket before listing the model's prefix (see S3Grant). KServe's
            # agent (the logger) only puts objects under each logged InferenceService's own prefix.
            self._pod_identity(
                f"{name}-models",
                MODEL_SERVICE_ACCOUNT,
                "KServe model servers: read the configured model prefixes"
                + (", write their logged requests" if logged else ""),
                pulumi.Output.all(args.models_bucket_arn, args.key_arn, args.raw_bucket_arn or "").apply(
                    lambda v: s3_access_policy(
                        [S3Grant(v[0], p, head_bucket=True) for p in prefixes]
                        + [S3Grant(v[2], p, write=True, read=False) for p in logged],
                        key_arn=v[1],
                    )
                ),
            )
        for server in args.vllm_servers:
            if server.source == "lake" or server.hub_token_secret is not None:
                self._pod_identity(
                    f"{name}-vllm-{server.name}",
                    server.service_account,
                    f"vLLM {server.name}: read its weights or its hub token",
                    self._vllm_policy(server),
                )
        self.register_outputs({})

    def _pod_identity(
        self, resource_name: str, service_account: str, purpose: str, policy: pulumi.Input[str]
    ) -> aws.eks.PodIdentityAssociation:
        args = self._args
        return pod_identity_role(
            resource_name,
            cluster_name=args.cluster_name,
            namespace=SERVING_NAMESPACE,
            service_account=service_account,
            description=f"{args.label}: {purpose} (Pod Identity)",
            policy=policy,
            tags=args.cost_tags,
            opts=self._child,
        )

    def _vllm_policy(self, server: VllmServer) -> pulumi.Output[str]:
        args = self._args
        hub_secret = server.hub_token_secret
        prefix = server.model.strip("/") + "/"
        return pulumi.Output.all(args.models_bucket_arn, args.key_arn, self._partition, self._account_id).apply(
            lambda v: s3_access_policy(
                [S3Grant(v[0], prefix)] if server.source == "lake" else [],
                key_arn=v[1],
                secret_arns=[secret_arn_pattern(v[2], args.region, v[3], hub_secret)] if hub_secret else [],
            )
        )
