"""Kubernetes secrets are envelope-encrypted with a KMS key."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule


@resource_rule(
    id="aws-eks-cluster-secrets-encryption",
    severity="high",
    types=["aws:eks/cluster:Cluster"],
    description="EKS envelope-encrypts Kubernetes secrets with a customer-managed KMS key.",
    remediation='Set encryptionConfig with resources ["secrets"] and provider.keyArn of a rotating KMS key.',
    references=["checkov CKV_AWS_58", "trivy AVD-AWS-0039", "CIS Amazon EKS Benchmark 5.3.1"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    config = r.inputs.get("encryptionConfig")
    if contains_unknown(config):
        return
    blocks = [b for b in as_list(config) if isinstance(b, Mapping)]
    encrypted = any(
        "secrets" in as_list(b.get("resources")) and (b.get("provider") or {}).get("keyArn") for b in blocks
    )
    if not encrypted:
        yield (
            'Kubernetes secrets are not envelope-encrypted: set encryptionConfig with resources ["secrets"] and a '
            "KMS key"
        )


RULE = check
