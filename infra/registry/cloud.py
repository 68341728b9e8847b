"""The image cache's AWS side (cloud layer): one ECR pull-through cache rule per upstream registry under the
stack's prefix, a repository creation template per rule (the platform's images key, untagged images expiring),
the role ECR uses to apply the template, and the node roles' right to import upstream images on a first pull.

The cluster layer pulls `<registry>/<prefix>/<upstream>/...` (`infra.registry.documents.cached_image`); nothing
here runs in the cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.iam_documents import account_only_key_policy, service_trust_policy
from mlplatform.infra.registry import documents
from mlplatform.infra.registry.documents import UPSTREAMS

COMPONENT_TYPE = "mlplatform:registry:ImageCacheCloud"


@dataclass(frozen=True, kw_only=True)
class ImageCacheCloudArgs:
    label: str
    """The cluster's configured name (descriptions, the key's alias)."""
    prefix: pulumi.Input[str]
    """The stack's repository prefix; each rule's is `<prefix>/<upstream>`. The default derives from the cluster's
    name: pass it as an Output of the cluster, so the rules follow the cluster they serve."""
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Secrets Manager secret ARN (`ecr-pullthroughcache/...`) per upstream that needs one; an upstream needing
    credentials without one gets no rule."""
    node_role_names: Sequence[pulumi.Input[str]] = ()
    """The roles the kubelet pulls with (system nodes, Karpenter's nodes): Outputs of those roles."""
    protect: bool = False
    """`protect` and `retainOnDelete` on the images key."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class ImageCacheCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    registry: pulumi.Output[str]
    """`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>`: what the cluster layer's image references start with
    (then `/<upstream>/<repository>:<tag>`)."""
    upstreams: list[str]
    """Upstreams with a rule (known from config)."""

    def __init__(self, name: str, args: ImageCacheCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        partition, account_id, region = account.partition, account.account_id, account.region
        self.upstreams = documents.cached_upstreams(args.credentials)
        upstreams = self.upstreams
        prefix = pulumi.Output.from_input(args.prefix)

        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.label}: images cached from public registries (ECR pull-through cache)",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            policy=pulumi.Output.all(partition, account_id).apply(lambda v: account_only_key_policy(v[0], v[1])),
            tags=dict(args.cost_tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.label}-images", target_key_id=key.key_id, opts=child)

        role = aws.iam.Role(
            f"{name}-template-role",
            description=f"{args.label}: ECR creates the image cache's repositories (KMS key, tags)",
            assume_role_policy=service_trust_policy("ecr.amazonaws.com"),
            tags=dict(args.cost_tags),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-template-role-policy",
            role=role.id,
            policy=pulumi.Output.all(partition, region, account_id, prefix, key.arn).apply(
                lambda v: documents.template_role_policy(v[0], v[1], v[2], v[3], upstreams, v[4])
            ),
            opts=child,
        )

        self.rules: dict[str, aws.ecr.PullThroughCacheRule] = {}
        for upstream in UPSTREAMS:
            if upstream.key not in upstreams:
                continue
            rule_prefix = pulumi.Output.concat(prefix, "/", upstream.key)
            # The template first: a pull that beats it would create the repository with ECR's defaults (AES256).
            template = aws.ecr.RepositoryCreationTemplate(
                f"{name}-{upstream.key}-template",
                prefix=rule_prefix,
                applied_fors=["PULL_THROUGH_CACHE"],
                description=f"{args.label}: {upstream.title} cache",
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": key.arn}],
                # MUTABLE: ECR re-syncs a cached tag with its upstream at least once a day, which an immutable
                # repository would refuse; the platform pins tags (and digests where the source gives them).
                image_tag_mutability="MUTABLE",
                lifecycle_policy=documents.lifecycle_policy(),
                custom_role_arn=role.arn,
                resource_tags=dict(args.cost_tags),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
            )
            self.rules[upstream.key] = aws.ecr.PullThroughCacheRule(
                f"{name}-{upstream.key}",
                ecr_repository_prefix=rule_prefix,
                upstream_registry_url=upstream.url,
                credential_arn=args.credentials.get(upstream.key),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[template]),
            )

        for index, role_name in enumerate(args.node_role_names):
            aws.iam.RolePolicy(
                f"{name}-node-import-{index}",
                role=role_name,
                policy=pulumi.Output.all(partition, region, account_id, prefix).apply(
                    lambda v: documents.node_import_policy(v[0], v[1], v[2], v[3], upstreams)
                ),
                opts=child,
            )

        self.registry = pulumi.Output.all(account_id, region, partition, prefix).apply(
            lambda v: f"{documents.registry_host(v[0], v[1], v[2])}/{v[3]}"
        )
        self.register_outputs({"registry": self.registry})
