"""The Kubernetes provider of the cluster layer, built from the cloud layer's outputs (or any EKS cluster's name,
endpoint and certificate authority).

The kubeconfig authenticates with `aws eks get-token` as whoever runs the cluster layer (a deployer, as the stack's
`aws:profile` and role say, or the in-VPC runner's role), so it holds no credential. Because the values come from a
stack that already exists, they are known in the cluster layer's first preview: the provider then previews every
object against the live API server.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s

from mlplatform.infra.aws_provider import GetTokenOptions
from mlplatform.infra.cluster import documents


def kubernetes_provider(
    resource_name: str,
    *,
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    certificate_authority: pulumi.Input[str],
    region: str,
    get_token: GetTokenOptions | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> k8s.Provider:
    config: pulumi.Output[str] = pulumi.Output.all(cluster_name, endpoint, certificate_authority).apply(
        lambda v: json.dumps(documents.kubeconfig(v[0], v[1], v[2], region, get_token), sort_keys=True)
    )
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(config)
    return k8s.Provider(resource_name, kubeconfig=kubeconfig, enable_server_side_apply=True, opts=opts)
