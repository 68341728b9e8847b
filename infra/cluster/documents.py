"""Pure builders for the cluster: IAM documents, access policies, add-on settings, kubeconfig. No resources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplatform.infra.aws_provider import GetTokenOptions
from mlplatform.infra.iam_documents import service_trust_policy

CONTROL_PLANE_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")

# EKS access policies by the short names used in config.
ACCESS_POLICIES: dict[str, str] = {
    "cluster-admin": "AmazonEKSClusterAdminPolicy",
    "admin": "AmazonEKSAdminPolicy",
    "edit": "AmazonEKSEditPolicy",
    "view": "AmazonEKSViewPolicy",
}

# Add-ons the nodes need before they can become Ready, and those that need Ready nodes to become ACTIVE.
ADDONS_BEFORE_NODES: tuple[str, ...] = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_NODES: tuple[str, ...] = ("coredns", "aws-ebs-csi-driver")

# Managed policies, attached by ARN suffix (partition filled in at deploy time).
CLUSTER_ROLE_POLICIES: tuple[str, ...] = ("AmazonEKSClusterPolicy",)
NODE_ROLE_POLICIES: tuple[str, ...] = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",  # pull only: nodes never push images
    "AmazonSSMManagedInstanceCore",  # shell access through SSM Session Manager; no SSH keys, no open port 22
)
# The VPC CNI and EBS CSI controllers get their AWS permissions through Pod Identity, not from the node role,
# so a pod that reaches the node's credentials cannot manage ENIs or volumes.
ADDON_POD_IDENTITY: dict[str, tuple[str, str]] = {
    "vpc-cni": ("aws-node", "AmazonEKS_CNI_Policy"),
    "aws-ebs-csi-driver": ("ebs-csi-controller-sa", "AmazonEBSCSIDriverPolicy"),
}


def access_policy_arn(partition: str, short_name: str) -> str:
    return f"arn:{partition}:eks::aws:cluster-access-policy/{ACCESS_POLICIES[short_name]}"


def cluster_assume_role_policy() -> str:
    return service_trust_policy("eks.amazonaws.com", ("sts:AssumeRole", "sts:TagSession"))


def node_assume_role_policy() -> str:
    return service_trust_policy("ec2.amazonaws.com")


def secrets_key_usage_policy(key_arn: str) -> str:
    """What the cluster role needs to envelope-encrypt Kubernetes secrets with one key."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EnvelopeEncryptSecrets",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                    "Resource": key_arn,
                }
            ],
        },
        sort_keys=True,
    )


def addon_configuration(addon: str, tags: Mapping[str, str]) -> str | None:
    """Add-on configuration values (JSON), or None for the add-on's defaults."""
    if addon == "vpc-cni":
        # Enforce Kubernetes NetworkPolicies (tenant isolation) with the CNI's eBPF agent.
        return json.dumps({"enableNetworkPolicy": "true"}, sort_keys=True)
    if addon == "aws-ebs-csi-driver":
        # Volumes created for PersistentVolumeClaims carry the cost tags (provider default tags do not reach them).
        return json.dumps({"controller": {"extraVolumeTags": dict(sorted(tags.items()))}}, sort_keys=True)
    return None


def kubeconfig(
    cluster_name: str, endpoint: str, ca_data: str, region: str, get_token: GetTokenOptions | None = None
) -> dict[str, Any]:
    """A kubeconfig that authenticates with `aws eks get-token` (short-lived tokens; nothing stored), as the
    principal `get_token` names (the stack's `aws:profile`, role, ...; the caller's own credentials without it)."""
    options = get_token or GetTokenOptions()
    role = ["--role-arn", options.role_arn] if options.role_arn else []
    env = {"env": [{"name": k, "value": v} for k, v in options.env]} if options.env else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": [
                            *options.global_args,
                            "--region",
                            region,
                            "eks",
                            "get-token",
                            *role,
                            "--cluster-name",
                            cluster_name,
                            "--output",
                            "json",
                        ],
                        **env,
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }
