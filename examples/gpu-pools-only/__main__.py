"""Use only `infra.gpu_pools`: install Karpenter and two GPU pools into a cluster that already exists.

pulumi up -s example        # with the Pulumi CLI and AWS credentials
mlp plan example -C examples/gpu-pools-only    # offline, from the repository root
"""

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mlplatform.infra.aws_provider import explicit_provider, get_token_options
from mlplatform.infra.cluster.documents import kubeconfig
from mlplatform.infra.gpu_pools import GpuNodePools, GpuNodePoolsArgs, GpuPoolsCloud, GpuPoolsCloudArgs, PoolSpec
from mlplatform.infra.program import aws_provider_settings
from mlplatform.infra.tagging import cost_labels

config = pulumi.Config()
region = pulumi.Config("aws").require("region")
cluster_name = config.require("cluster_name")
tags = config.require_object("tags")

# The stack's other `aws:*` keys (profile, assumeRoles, ...) reach this provider and the kubeconfig alike.
provider_settings = aws_provider_settings(owned_tags=tags)
aws_provider = explicit_provider("aws", provider_settings, region=region, default_tags=tags, aws_account_id=None)
cluster = aws.eks.get_cluster_output(name=cluster_name, opts=pulumi.InvokeOutputOptions(provider=aws_provider))
kube_provider = k8s.Provider(
    "k8s",
    kubeconfig=pulumi.Output.secret(
        pulumi.Output.all(cluster.endpoint, cluster.certificate_authorities[0].data).apply(
            lambda v: json.dumps(kubeconfig(cluster_name, v[0], v[1], region, get_token_options(provider_settings)))
        )
    ),
    enable_server_side_apply=True,
)

pools = [
    PoolSpec(
        name="inference",
        provisioner="karpenter",
        instance_families=("g6e", "g6"),
        capacity_types=("spot", "on-demand"),
        max_gpus=8,
        ami_alias="al2023@v20260724",
        consolidate_after="10m",
    ),
    PoolSpec(
        name="notebooks",
        provisioner="karpenter",
        instance_types=("g6.xlarge",),
        capacity_types=("spot",),
        max_gpus=4,
        ami_alias="al2023@v20260724",
        time_slicing_replicas=4,
    ),
]
# The AWS side: Karpenter's interruption queue, node and controller roles, access entry, Pod Identity association.
# `cluster.name` (an Output of the lookup) orders nothing here: the cluster already exists.
karpenter_aws = GpuPoolsCloud(
    "gpu-aws",
    GpuPoolsCloudArgs(
        cluster_name=cluster.name,
        label=cluster_name,
        private_subnet_ids=cluster.vpc_config.subnet_ids,
        node_group_role_arn=config.require("node_role_arn"),
        pools=pools,
        karpenter=True,
        cost_tags=tags,
        cost_labels=cost_labels(tags),
    ),
    opts=pulumi.ResourceOptions(providers={"aws": aws_provider}),
)
# The Kubernetes side, in the same program: Karpenter starts only once its identity and policies exist, and on
# destroy the NodePools go first, while Karpenter still runs and can terminate their nodes.
GpuNodePools(
    "gpu",
    GpuNodePoolsArgs(
        cluster_name=cluster.name,
        region=region,
        cluster_security_group_id=cluster.vpc_config.cluster_security_group_id,
        private_subnet_ids=cluster.vpc_config.subnet_ids,
        karpenter_node_role_name=karpenter_aws.karpenter_node_role_name,
        interruption_queue_name=karpenter_aws.interruption_queue_name,
        pools=pools,
        cost_tags=tags,
        cost_labels=cost_labels(tags),
        karpenter_replicas=2,
        system_node_selector={},  # this cluster's own nodes run Karpenter
        depends_on=[karpenter_aws],
    ),
    opts=pulumi.ResourceOptions(providers={"kubernetes": kube_provider}),
)
pulumi.export("interruption_queue", karpenter_aws.interruption_queue_name)
