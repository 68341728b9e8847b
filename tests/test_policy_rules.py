"""Every shipped rule: a known-good fixture per resource type passes, and changing one field gives the exact message.

The fixtures are normalized resources (what all three front ends produce). One compliant stack holds a good
resource of every type; each case changes one field (or the type) of one resource and runs one rule.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

import pytest

from mlplatform.policies.config import PolicyConfig
from mlplatform.policies.engine import evaluate
from mlplatform.policies.model import UNKNOWN, Resource
from mlplatform.policies.registry import all_rules, rule_by_id

TODAY = dt.date(2026, 11, 23)
TAGS = {"cost-center": "cc", "team": "ml", "environment": "prod", "project": "mlp", "owner": "o@example.com"}
DELETE = object()


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


SECURE_POD = {
    "securityContext": {"runAsNonRoot": True},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "containers": [
        {
            "name": "app",
            "image": "registry.example.com/app:1.2.3",
            "resources": {
                "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                "limits": {"memory": "1Gi", "nvidia.com/gpu": "1"},
            },
            "env": [
                {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}},
                {"name": "LOG_LEVEL", "value": "info"},
            ],
            "securityContext": {"privileged": False},
        }
    ],
}

# name -> (type, inputs, options)
GOOD: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "cluster": (
        "aws:eks/cluster:Cluster",
        {
            "version": "1.35",
            "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": False, "subnetIds": ["subnet-1"]},
            "encryptionConfig": {"provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"}, "resources": ["secrets"]},
            "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
            "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
            "upgradePolicy": {"supportType": "STANDARD"},
        },
        {},
    ),
    "gpu-group": (
        "aws:eks/nodeGroup:NodeGroup",
        {
            "instanceTypes": ["p5.48xlarge"],
            "amiType": "AL2023_x86_64_NVIDIA",
            "scalingConfig": {"maxSize": 2},
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
        },
        {},
    ),
    "lt": (
        "aws:ec2/launchTemplate:LaunchTemplate",
        {
            "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "volumeType": "gp3"}}],
            "userData": base64.b64encode(b"#!/bin/bash\nnodeadm init\n").decode(),
        },
        {},
    ),
    "vm": (
        "aws:ec2/instance:Instance",
        {
            "metadataOptions": {"httpTokens": "required"},
            "rootBlockDevice": {"encrypted": True},
            "associatePublicIpAddress": False,
        },
        {},
    ),
    "sg": (
        "aws:ec2/securityGroup:SecurityGroup",
        {
            "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.0.0.0/16"]}],
        },
        {},
    ),
    "sg-rule": (
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        {
            "type": "ingress",
            "protocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "cidrBlocks": ["0.0.0.0/0"],
        },
        {},
    ),
    "default-sg": ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", {"vpcId": "vpc-1"}, {}),
    "vpc": ("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}, {}),
    "flow-log": ("aws:ec2/flowLog:FlowLog", {"vpcId": "vpc-1", "trafficType": "ALL"}, {}),
    "bucket": (
        "aws:s3/bucket:Bucket",
        {"bucketPrefix": "lake-", "tags": {**TAGS, "mlplatform.io/lake-zone": "curated"}},
        {"protect": True, "retainOnDelete": True},
    ),
    "bucket-pab": (
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        {
            "bucket": "lake-x",
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
        {},
    ),
    "bucket-sse": (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        {
            "bucket": "lake-x",
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:k"},
                    "bucketKeyEnabled": True,
                }
            ],
        },
        {},
    ),
    "bucket-versioning": (
        "aws:s3/bucketVersioning:BucketVersioning",
        {"bucket": "lake-x", "versioningConfiguration": {"status": "Enabled"}},
        {},
    ),
    "bucket-logging": ("aws:s3/bucketLogging:BucketLogging", {"bucket": "lake-x", "targetBucket": "logs"}, {}),
    "bucket-lifecycle": (
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        {"bucket": "lake-x", "rules": [{"id": "abort", "status": "Enabled"}]},
        {},
    ),
    "bucket-ownership": (
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        {"bucket": "lake-x", "rule": {"objectOwnership": "BucketOwnerEnforced"}},
        {},
    ),
    "bucket-policy": (
        "aws:s3/bucketPolicy:BucketPolicy",
        {
            "bucket": "lake-x",
            "policy": _doc(
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": ["arn:aws:s3:::lake-x"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "DenyObjectAccessFromOutsideTheVpc",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:GetObject*", "s3:PutObject*"],
                    "Resource": ["arn:aws:s3:::lake-x", "arn:aws:s3:::lake-x/*"],
                    "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0a1b2c3d"}},
                },
            ),
        },
        {},
    ),
    "policy": (
        "aws:iam/policy:Policy",
        {
            "policy": _doc(
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::lake-x/models/*"]},
                {"Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"},
            )
        },
        {},
    ),
    "role": (
        "aws:iam/role:Role",
        {
            "assumeRolePolicy": _doc(
                {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}
            )
        },
        {},
    ),
    "ci-role": (
        "aws:iam/role:Role",
        {
            "assumeRolePolicy": _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/ml:ref:refs/heads/main"}
                    },
                }
            )
        },
        {},
    ),
    "attachment": (
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"},
        {},
    ),
    "key": (
        "aws:kms/key:Key",
        {
            "enableKeyRotation": True,
            "policy": _doc(
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}
            ),
        },
        {"protect": True, "retainOnDelete": True},
    ),
    "db": (
        "aws:rds/instance:Instance",
        {"storageEncrypted": True, "publiclyAccessible": False, "backupRetentionPeriod": 7, "deletionProtection": True},
        {"protect": True, "retainOnDelete": True},
    ),
    "table": (
        "aws:dynamodb/table:Table",
        {
            "serverSideEncryption": {"enabled": True, "kmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"},
            "pointInTimeRecovery": {"enabled": True},
            "deletionProtectionEnabled": True,
        },
        {"protect": True, "retainOnDelete": True},
    ),
    "listener": (
        "aws:lb/listener:Listener",
        {
            "protocol": "HTTPS",
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "defaultActions": [{"type": "forward"}],
        },
        {},
    ),
    "alb": ("aws:lb/loadBalancer:LoadBalancer", {"internal": True, "accessLogs": {"enabled": True, "bucket": "l"}}, {}),
    "repo": (
        "aws:ecr/repository:Repository",
        {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}},
        {},
    ),
    "deploy": (
        "kubernetes:apps/v1:Deployment",
        {"metadata": {"name": "app", "namespace": "team"}, "spec": {"template": {"spec": SECURE_POD}}},
        {},
    ),
    "release": (
        "kubernetes:helm.sh/v3:Release",
        {
            "chart": "kube-prometheus-stack",
            "version": "88.5.3",
            "values": {"grafana": {"service": {"type": "ClusterIP"}, "ingress": {"enabled": False}}},
        },
        {},
    ),
    "service": ("kubernetes:core/v1:Service", {"metadata": {"name": "mlflow"}, "spec": {"type": "ClusterIP"}}, {}),
    "ingress": (
        "kubernetes:networking.k8s.io/v1:Ingress",
        {"metadata": {"name": "mlflow", "annotations": {"alb.ingress.kubernetes.io/scheme": "internal"}}},
        {},
    ),
    "nodepool": (
        "kubernetes:karpenter.sh/v1:NodePool",
        {
            "metadata": {"name": "inference"},
            "spec": {
                "template": {
                    "spec": {
                        "requirements": [
                            {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6e"]},
                            {
                                "key": "karpenter.k8s.aws/instance-gpu-manufacturer",
                                "operator": "In",
                                "values": ["nvidia"],
                            },
                        ],
                        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                        "expireAfter": "720h",
                    }
                },
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "10m"},
                "limits": {"nvidia.com/gpu": "8", "cpu": "512"},
            },
        },
        {},
    ),
    "nodeclass": (
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
        {"metadata": {"name": "inference"}, "spec": {"amiSelectorTerms": [{"alias": "al2023@v20260724"}]}},
        {},
    ),
    "namespace": ("kubernetes:core/v1:Namespace", {"metadata": {"name": "team-a"}}, {}),
    "default-deny": (
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        {
            "metadata": {"name": "default-deny", "namespace": "team-a"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {},
    ),
    "team-binding": (
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        {
            "metadata": {"name": "team-members", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "mlplatform:tenant"},
            "subjects": [{"kind": "Group", "name": "ml-a", "apiGroup": "rbac.authorization.k8s.io"}],
        },
        {},
    ),
    "alb-controller": (
        "kubernetes:helm.sh/v3:Release",
        {
            "chart": "aws-load-balancer-controller",
            "version": "3.5.0",
            "values": {
                "ingressClass": "alb",
                "createIngressClassResource": True,
                "ingressClassParams": {"create": True, "name": "alb-internal", "spec": {"scheme": "internal"}},
                "disableIngressClassAnnotation": True,
                "defaultLoadBalancerScheme": "internal",
            },
        },
        {},
    ),
}
# Sub-resources find their bucket and flow logs their VPC by reference, as the planner records them.
REFERENCES = {name: {"bucket": ("bucket",)} for name in GOOD if name.startswith("bucket-")}
REFERENCES["flow-log"] = {"vpcId": ("vpc",)}


def stack(changes: dict[str, dict[str, Any]] | None = None) -> list[Resource]:
    """The compliant stack, with `changes` applied: {resource: {"path.to.field": value, "type": new type}}."""
    out = []
    for name, (type_token, inputs, options) in GOOD.items():
        inputs = copy.deepcopy(inputs)
        for path, value in (changes or {}).get(name, {}).items():
            if path == "type":
                type_token = value
                continue
            if path == "options":
                options = value
                continue
            _set(inputs, path, value)
        tags = dict(TAGS) if type_token.startswith("aws:") else {}
        own = inputs.get("tags")
        if isinstance(own, dict):
            tags = own
        out.append(
            Resource(
                type=type_token,
                name=name,
                inputs=inputs,
                tags=tags,
                options=dict(options),
                references=REFERENCES.get(name, {}),
            )
        )
    return out


def _set(node: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


def run(rule_id: str, resources: list[Resource]) -> list[tuple[str, str]]:
    rule = rule_by_id(rule_id)
    report = evaluate(resources, [rule], PolicyConfig(default_level="mandatory"), today=TODAY)
    return [(v.resource, v.message) for v in report.violations]


P = "lake-x"
# (rule, resource, {field: new value}, exact message)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "aws-eks-cluster-disallow-public-endpoint",
        "cluster",
        {"vpcConfig.endpointPublicAccess": True},
        "the Kubernetes API endpoint is public; set vpcConfig.endpointPublicAccess to false",
    ),
    (
        "aws-eks-cluster-disallow-public-endpoint",
        "cluster",
        {"vpcConfig.endpointPublicAccess": DELETE},
        "the Kubernetes API endpoint is public (EKS default when endpointPublicAccess is unset); set "
        "vpcConfig.endpointPublicAccess to false",
    ),
    (
        "aws-eks-cluster-public-endpoint-restricted",
        "cluster",
        {"vpcConfig.endpointPublicAccess": True},
        "the public API endpoint is open to 0.0.0.0/0 (no vpcConfig.publicAccessCidrs)",
    ),
    (
        "aws-eks-cluster-secrets-encryption",
        "cluster",
        {"encryptionConfig.resources": []},
        'Kubernetes secrets are not envelope-encrypted: set encryptionConfig with resources ["secrets"] and a KMS key',
    ),
    (
        "aws-eks-cluster-control-plane-logging",
        "cluster",
        {"enabledClusterLogTypes": ["api", "audit"]},
        "control-plane log types not enabled: authenticator, controllerManager, scheduler",
    ),
    (
        "aws-eks-cluster-supported-version",
        "cluster",
        {"version": "1.29"},
        "Kubernetes 1.29 is not a version the catalog supports (1.34, 1.35, 1.36)",
    ),
    (
        "aws-eks-cluster-supported-version",
        "cluster",
        {"version": "1.34"},
        "Kubernetes 1.34 left standard support on 2026-12-02: EKS bills extended support ($0.60/h instead of "
        "$0.10/h); upgrade",
    ),  # checked on 2027-01-01 in the test below
    (
        "aws-eks-cluster-upgrade-policy-standard",
        "cluster",
        {"upgradePolicy": DELETE},
        "upgrade policy is unset (EKS default: EXTENDED): the cluster moves to extended support at $0.60/h; set "
        "upgradePolicy.supportType to STANDARD",
    ),
    (
        "aws-eks-cluster-access-entries",
        "cluster",
        {"accessConfig.authenticationMode": "CONFIG_MAP"},
        "authentication mode is CONFIG_MAP; use API (access entries only)",
    ),
    (
        "aws-eks-nodegroup-disallow-ssh",
        "gpu-group",
        {"remoteAccess": {"ec2SshKey": "ops"}},
        "nodes accept SSH from 0.0.0.0/0 (remoteAccess without sourceSecurityGroupIds)",
    ),
    (
        "aws-ec2-imdsv2-required",
        "lt",
        {"metadataOptions.httpTokens": "optional"},
        "instance metadata accepts IMDSv1 (metadataOptions.httpTokens is optional); require tokens",
    ),
    (
        "aws-ec2-imdsv2-required",
        "vm",
        {"metadataOptions": DELETE},
        "instance metadata accepts IMDSv1 (metadataOptions.httpTokens is unset); require tokens",
    ),
    (
        "aws-ec2-imds-hop-limit",
        "lt",
        {"metadataOptions.httpPutResponseHopLimit": 2},
        "IMDS hop limit is 2: pods can reach the node's instance credentials (allowed: 1)",
    ),
    (
        "aws-ec2-encrypted-volumes",
        "lt",
        {"blockDeviceMappings.0.ebs.encrypted": "false"},
        "volume /dev/xvda is not encrypted",
    ),
    (
        "aws-ec2-no-public-ip",
        "vm",
        {"associatePublicIpAddress": True},
        "the instance gets a public IP address (associatePublicIpAddress)",
    ),
    (
        "aws-ec2-no-secrets-in-user-data",
        "lt",
        {"userData": base64.b64encode(b"export AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP\n").decode()},
        "userData contains what looks like an AWS access key id",
    ),
    (
        "aws-ec2-no-public-admin-ports",
        "sg",
        {"ingress.0.cidrBlocks": ["0.0.0.0/0"], "ingress.0.fromPort": 0, "ingress.0.toPort": 65535},
        "ingress from the internet reaches admin port(s) 22, 3389, 6443, 10250, 2375, 2376",
    ),
    (
        "aws-ec2-no-public-admin-ports",
        "sg-rule",
        {"fromPort": 22},
        "ingress from the internet reaches admin port(s) 22",
    ),
    ("aws-ec2-vpc-flow-logs", "flow-log", {"type": "aws:ec2/subnet:Subnet"}, "the VPC has no flow log"),
    (
        "aws-ec2-default-security-group-no-rules",
        "default-sg",
        {"ingress": [{"protocol": "-1"}]},
        "the default security group has ingress rules",
    ),
    (
        "aws-s3-bucket-public-access-block",
        "bucket-pab",
        {"blockPublicPolicy": False},
        "the public access block leaves blockPublicPolicy off",
    ),
    (
        "aws-s3-bucket-public-access-block",
        "bucket-pab",
        {"type": "aws:s3/bucketAcl:BucketAcl"},
        "the bucket has no public access block",
    ),
    (
        "aws-s3-bucket-no-public-acl",
        "bucket",
        {"acl": "public-read"},
        "the bucket ACL public-read makes objects readable outside the account",
    ),
    (
        "aws-s3-bucket-encryption-kms",
        "bucket-sse",
        {"rules.0.applyServerSideEncryptionByDefault.sseAlgorithm": "AES256"},
        "the bucket is encrypted with AES256, not SSE-KMS",
    ),
    (
        "aws-s3-bucket-versioning",
        "bucket-versioning",
        {"versioningConfiguration.status": "Suspended"},
        "the bucket does not keep object versions",
    ),
    (
        "aws-s3-bucket-access-logging",
        "bucket-logging",
        {"type": "aws:s3/bucketAcl:BucketAcl"},
        "the bucket has no server access logging",
    ),
    (
        "aws-s3-bucket-lifecycle",
        "bucket-lifecycle",
        {"type": "aws:s3/bucketAcl:BucketAcl"},
        "the bucket has no lifecycle rules",
    ),
    (
        "aws-s3-bucket-owner-enforced",
        "bucket-ownership",
        {"rule.objectOwnership": "ObjectWriter"},
        "the bucket allows ACLs (object ownership is not BucketOwnerEnforced)",
    ),
    (
        "aws-s3-bucket-tls-only",
        "bucket-policy",
        {"policy": _doc({"Effect": "Allow", "Principal": {"AWS": "x"}, "Action": "s3:GetObject", "Resource": "*"})},
        "the bucket policy does not deny requests without TLS",
    ),
    (
        "aws-iam-policy-no-admin",
        "policy",
        {"policy": _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})},
        'the policy allows Action "*" on Resource "*" (administrator)',
    ),
    (
        "aws-iam-policy-no-wildcard-actions",
        "policy",
        {"policy": _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::lake-x"})},
        "the policy allows wildcard actions s3:*",
    ),
    (
        "aws-iam-policy-no-wildcard-resources",
        "policy",
        {"policy": _doc({"Effect": "Allow", "Action": ["s3:GetObject", "ec2:DescribeSubnets"], "Resource": "*"})},
        'the policy allows s3:GetObject on Resource "*"',
    ),
    (
        "aws-iam-policy-no-privilege-escalation",
        "policy",
        {"policy": _doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})},
        "the policy allows iam:PassRole on unscoped resources",
    ),
    (
        "aws-iam-policy-no-privilege-escalation",
        "policy",
        {"policy": _doc({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:iam::1:role/admin"})},
        "the policy allows iam:UpdateAssumeRolePolicy on arn:aws:iam::1:role/admin: the holder can make the role "
        "assumable by itself and act as it",
    ),
    (
        "aws-iam-no-users",
        "role",
        {"type": "aws:iam/user:User"},
        "the stack creates an IAM user or user policy; use roles instead",
    ),
    (
        "aws-iam-role-trust-no-wildcard-principal",
        "role",
        {"assumeRolePolicy": _doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"})},
        'any AWS principal can assume the role (Principal "*" without conditions)',
    ),
    (
        "aws-iam-role-oidc-trust-scoped",
        "ci-role",
        {
            "assumeRolePolicy": _doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}},
                }
            )
        },
        "any token.actions.githubusercontent.com workflow can assume the role (no condition on "
        "token.actions.githubusercontent.com:sub)",
    ),
    (
        "aws-iam-no-admin-managed-policy",
        "attachment",
        {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        "attaches the managed policy AdministratorAccess",
    ),
    ("aws-kms-key-rotation", "key", {"enableKeyRotation": False}, "key rotation is off"),
    (
        "aws-kms-key-no-wildcard-principal",
        "key",
        {"policy": _doc({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"})},
        'the key policy allows Principal "*" without an account or organization condition',
    ),
    ("aws-rds-instance-storage-encrypted", "db", {"storageEncrypted": False}, "the database storage is not encrypted"),
    (
        "aws-dynamodb-table-encrypted-cmk",
        "table",
        {"serverSideEncryption": {"enabled": True}},
        "the table is encrypted with the AWS managed key aws/dynamodb, not a customer managed key",
    ),
    (
        "aws-dynamodb-table-encrypted-cmk",
        "table",
        {"serverSideEncryption": None},
        "the table is encrypted with the AWS owned key (serverSideEncryption is not enabled)",
    ),
    (
        "aws-dynamodb-table-recoverable",
        "table",
        {"pointInTimeRecovery.enabled": False},
        "point-in-time recovery is off",
    ),
    ("aws-dynamodb-table-recoverable", "table", {"deletionProtectionEnabled": False}, "deletion protection is off"),
    ("aws-rds-instance-not-public", "db", {"publiclyAccessible": True}, "the database is publicly accessible"),
    (
        "aws-rds-instance-backup-retention",
        "db",
        {"backupRetentionPeriod": 1},
        "automated backups are kept 1 day(s); at least 7 are required",
    ),
    (
        "aws-rds-instance-deletion-protection",
        "db",
        {"deletionProtection": False},
        "the database has no deletion protection",
    ),
    ("aws-lb-listener-https", "listener", {"protocol": "HTTP"}, "the listener serves plain HTTP"),
    (
        "aws-lb-listener-tls12",
        "listener",
        {"sslPolicy": "ELBSecurityPolicy-2016-08"},
        "the listener's security policy ELBSecurityPolicy-2016-08 allows TLS older than 1.2",
    ),
    ("aws-lb-access-logs", "alb", {"accessLogs.enabled": False}, "the load balancer writes no access logs"),
    (
        "aws-ecr-repository-immutable-tags",
        "repo",
        {"imageTagMutability": "MUTABLE"},
        "image tags are mutable (MUTABLE)",
    ),
    (
        "aws-ecr-repository-scan-on-push",
        "repo",
        {"imageScanningConfiguration.scanOnPush": False},
        "images are not scanned on push",
    ),
    (
        "kubernetes-workload-requests-limits",
        "deploy",
        {"spec.template.spec.containers.0.resources.limits": {"nvidia.com/gpu": "1"}},
        "spec.template.spec.containers[app] sets no limits.memory",
    ),
    (
        "kubernetes-workload-gpu-limits",
        "deploy",
        {"spec.template.spec.containers.0.resources.limits": {"memory": "1Gi"}},
        "spec.template.spec.containers[app] requests nvidia.com/gpu without a limit",
    ),
    (
        "kubernetes-workload-gpu-limits",
        "deploy",
        {"spec.template.spec.tolerations": []},
        "spec.template.spec uses GPUs but does not tolerate the nvidia.com/gpu taint",
    ),
    (
        "kubernetes-workload-no-privileged",
        "deploy",
        {"spec.template.spec.containers.0.securityContext.privileged": True},
        "spec.template.spec.containers[app] is privileged",
    ),
    (
        "kubernetes-workload-no-privileged",
        "deploy",
        {"spec.template.spec.hostNetwork": True},
        "spec.template.spec uses hostNetwork",
    ),
    (
        "kubernetes-workload-run-as-non-root",
        "deploy",
        {"spec.template.spec.securityContext": {}},
        "spec.template.spec.containers[app] may run as root (runAsNonRoot not set)",
    ),
    (
        "kubernetes-workload-no-latest-image",
        "deploy",
        {"spec.template.spec.containers.0.image": "vllm/vllm-openai"},
        "spec.template.spec.containers[app] uses an unpinned image vllm/vllm-openai",
    ),
    (
        "kubernetes-helm-release-pinned",
        "release",
        {"version": DELETE},
        "chart kube-prometheus-stack has no exact version (unset)",
    ),
    (
        "mlp-required-cost-tags",
        "key",
        {"tags": {"team": "ml"}},
        "missing cost tag(s) cost-center, environment, project, owner",
    ),
    (
        "mlp-tag-format",
        "key",
        {"tags": {**TAGS, "aws:owner": "x"}},
        "tag 'aws:owner': tag keys starting with `aws:` are reserved for AWS",
    ),
    (
        "mlp-gpu-pool-taint",
        "nodepool",
        {"spec.template.spec.taints": []},
        "GPU nodes have no nvidia.com/gpu NoSchedule taint: CPU pods can land on them and keep them running",
    ),
    (
        "mlp-gpu-pool-taint",
        "gpu-group",
        {"taints": DELETE},
        "GPU nodes have no nvidia.com/gpu NoSchedule taint: CPU pods can land on them and keep them running",
    ),
    (
        "mlp-gpu-pool-limits",
        "nodepool",
        {"spec.limits": {"cpu": "512"}},
        "the GPU NodePool has no nvidia.com/gpu limit: Karpenter may launch GPUs without bound",
    ),
    (
        "mlp-gpu-families-allowed",
        "nodepool",
        {"spec.template.spec.requirements.0.values": ["p6-b200"]},
        "uses GPU families p6-b200, not allowed here (allowed: g6, g6e, p5)",
    ),
    (
        "mlp-max-gpus",
        "nodepool",
        {"spec.limits": {"nvidia.com/gpu": "64", "cpu": "512"}},
        "the GPU pools allow 80 GPUs in all (nodepool: 64, gpu-group: 16); the maximum here is 32",
    ),
    (
        "mlp-karpenter-gpu-consolidation",
        "nodepool",
        {"spec.disruption.consolidateAfter": "Never"},
        "idle GPU nodes are never consolidated (consolidateAfter: Never)",
    ),
    (
        "mlp-no-latest-ami",
        "nodeclass",
        {"spec.amiSelectorTerms.0.alias": "al2023@latest"},
        "the node class follows al2023@latest: nodes change whenever AWS publishes an AMI",
    ),
    (
        "mlp-hub-token-secret-reference",
        "deploy",
        {"spec.template.spec.containers.0.env.0": {"name": "HF_TOKEN", "value": "hf_abcdefghijklmnopqrstuvwxyz0123"}},
        "spec.template.spec.containers[app] sets HF_TOKEN as a literal value; use valueFrom.secretKeyRef",
    ),
    (
        "mlp-hub-token-secret-reference",
        "deploy",
        {
            "spec.template.spec.containers.0.env.0": {
                "name": "HF_TOKEN_PATH",
                "value": "hf_abcdefghijklmnopqrstuvwxyz0123",
            }
        },
        "spec.template.spec.containers[app] sets HF_TOKEN_PATH as a literal value; use valueFrom.secretKeyRef",
    ),
    (
        "mlp-no-public-ml-endpoints",
        "service",
        {"spec.type": "LoadBalancer"},
        "the Service is an internet-facing load balancer",
    ),
    (
        "mlp-no-public-ml-endpoints",
        "ingress",
        {"metadata.annotations": {}},
        "the Ingress is internet-facing (alb.ingress.kubernetes.io/scheme is not internal)",
    ),
    (
        "mlp-no-public-ml-endpoints",
        "release",
        {"values.grafana.service.type": "LoadBalancer"},
        "chart values expose a service: grafana.service.type is LoadBalancer without an internal scheme",
    ),
    (
        "mlp-no-public-ml-endpoints",
        "release",
        # Envoy Gateway's proxies get a LoadBalancer Service unless its default EnvoyProxy says otherwise
        {"chart": "oci://docker.io/envoyproxy/gateway-helm"},
        "chart values expose a service: config.envoyGateway.envoyProxy.provider.kubernetes.envoyService.type is "
        "unset (LoadBalancer): every Gateway gets a load balancer",
    ),
    (
        "mlp-no-public-ml-endpoints",
        "release",
        # any chart: a key ending in "service" (envoyService too) of type LoadBalancer
        {
            "values": {
                "config": {
                    "envoyGateway": {
                        "envoyProxy": {"provider": {"kubernetes": {"envoyService": {"type": "LoadBalancer"}}}}
                    }
                }
            }
        },
        "chart values expose a service: config.envoyGateway.envoyProxy.provider.kubernetes.envoyService.type is "
        "LoadBalancer without an internal scheme",
    ),
    ("mlp-prod-data-protected", "bucket", {"options": {"protect": True}}, "the data resource is not retainOnDelete"),
    (
        "kubernetes-rbac-no-group-edit-admin",
        "team-binding",
        {"roleRef.name": "edit"},
        "group(s) ml-a get the built-in edit role in namespace team-a",
    ),
    (
        "kubernetes-rbac-no-group-edit-admin",
        "team-binding",
        {"type": "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "roleRef.name": "cluster-admin"},
        "group(s) ml-a get the built-in cluster-admin role in every namespace",
    ),
    (
        "kubernetes-namespace-default-deny",
        "default-deny",
        {"spec.ingress": [{}]},
        "namespace team-a has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)",
    ),
    (
        "kubernetes-namespace-default-deny",
        "default-deny",
        {"spec.policyTypes": ["Ingress"]},
        "namespace team-a has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)",
    ),
    (
        "kubernetes-namespace-default-deny",
        "default-deny",
        {"metadata.namespace": "team-b"},
        "namespace team-a has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)",
    ),
    (
        "aws-s3-bucket-lake-vpc-endpoint-only",
        "bucket-policy",
        {"policy": _doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"})},
        "the curated lake bucket's policy does not deny object access from outside the VPC (no Deny with "
        "StringNotEquals on aws:SourceVpce or aws:SourceVpc)",
    ),
    (
        "aws-lb-controller-internal-only",
        "alb-controller",
        {"values.ingressClassParams.spec.scheme": "internet-facing"},
        "the controller's IngressClass does not fix the scheme: set ingressClassParams {create: true, spec: "
        "{scheme: internal}}",
    ),
    (
        "aws-lb-controller-internal-only",
        "alb-controller",
        {"values.disableIngressClassAnnotation": DELETE},
        "disableIngressClassAnnotation is not true: an Ingress with the kubernetes.io/ingress.class annotation "
        "bypasses the IngressClass and may ask for internet-facing",
    ),
    (
        "aws-lb-controller-internal-only",
        "service",
        {"spec.type": "LoadBalancer", "metadata.annotations": {"mlplatform.io/x": "y"}},
        "Service mlflow is of type LoadBalancer without service.beta.kubernetes.io/aws-load-balancer-scheme: internal",
    ),
]
PARAMS = {"mlp-gpu-families-allowed": {"allowedFamilies": ["g6", "g6e", "p5"]}, "mlp-max-gpus": {"maxGpus": 32}}


def test_the_compliant_stack_passes_every_rule() -> None:
    config = PolicyConfig(default_level="mandatory", params=PARAMS)
    report = evaluate(stack(), all_rules(), config, today=TODAY)
    assert report.violations == ()


def test_there_are_at_least_45_rules_each_with_metadata() -> None:
    rules = all_rules()
    assert len(rules) >= 45
    for rule in rules:
        assert rule.description and rule.remediation and rule.references, rule.id
        assert rule.severity in ("low", "medium", "high", "critical")


def test_every_rule_has_a_violating_case() -> None:
    assert {c[0] for c in CASES} >= {r.id for r in all_rules()} - {"mlp-budget"}


@pytest.mark.parametrize(
    ("rule_id", "resource", "change", "message"), CASES, ids=[f"{c[0]}:{c[1]}:{next(iter(c[2]))}" for c in CASES]
)
def test_one_change_gives_the_exact_message(rule_id: str, resource: str, change: dict[str, Any], message: str) -> None:
    day = dt.date(2027, 1, 1) if change.get("version") == "1.34" else TODAY
    rule = rule_by_id(rule_id)
    config = PolicyConfig(default_level="mandatory", params=PARAMS)
    good = evaluate(stack(), [rule], config, today=day)
    assert good.violations == (), f"{rule_id} fails the compliant fixture"
    report = evaluate(stack({resource: change}), [rule], config, today=day)
    found = [(v.resource, v.message) for v in report.violations]
    target = resource if rule.kind == "resource" or rule_id in ("mlp-required-cost-tags", "mlp-tag-format") else None
    if rule_id in ("aws-ec2-vpc-flow-logs",):
        target = "vpc"
    elif rule_id.startswith("aws-s3-bucket") and resource.startswith("bucket-"):
        target = "bucket"
    elif rule_id == "mlp-max-gpus":
        target = found[0][0] if found else None
    elif rule_id == "kubernetes-namespace-default-deny":
        target = "namespace"
    elif rule_id == "aws-lb-controller-internal-only":
        target = resource
    assert found == [(target, message)]


def test_unknown_values_are_not_violations() -> None:
    """A value known only after apply (preview, Terraform `known after apply`) gives no finding."""
    for rule_id, resource, field in [
        ("aws-eks-cluster-disallow-public-endpoint", "cluster", "vpcConfig.endpointPublicAccess"),
        ("aws-kms-key-rotation", "key", "enableKeyRotation"),
        ("aws-rds-instance-storage-encrypted", "db", "storageEncrypted"),
        ("aws-dynamodb-table-encrypted-cmk", "table", "serverSideEncryption"),
        ("aws-dynamodb-table-recoverable", "table", "deletionProtectionEnabled"),
        ("aws-s3-bucket-versioning", "bucket-versioning", "versioningConfiguration"),
    ]:
        assert run(rule_id, stack({resource: {field: UNKNOWN}})) == [], rule_id
