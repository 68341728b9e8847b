"""Managed node groups take no SSH key; node access goes through SSM Session Manager."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule


@resource_rule(
    id="aws-eks-nodegroup-disallow-ssh",
    severity="high",
    types=["aws:eks/nodeGroup:NodeGroup"],
    description="EKS managed node groups do not open SSH (remoteAccess without source security groups opens port "
    "22 to 0.0.0.0/0).",
    remediation="Remove remoteAccess; use SSM Session Manager (AmazonSSMManagedInstanceCore on the node role).",
    references=["checkov CKV_AWS_100"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    remote = r.inputs.get("remoteAccess")
    if contains_unknown(remote) or not isinstance(remote, Mapping) or not remote.get("ec2SshKey"):
        return
    if remote.get("sourceSecurityGroupIds"):
        yield "nodes accept SSH with key pair " + str(remote["ec2SshKey"]) + "; use SSM Session Manager"
    else:
        yield "nodes accept SSH from 0.0.0.0/0 (remoteAccess without sourceSecurityGroupIds)"


RULE = check
