"""Nodes and instances get no public IP address."""

from collections.abc import Iterator, Mapping

from policies.helpers import as_list
from policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-ec2-no-public-ip",
    severity="high",
    types=["aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"],
    description="Instances do not get public IP addresses; egress goes through NAT.",
    remediation="Set associatePublicIpAddress = false and launch into private subnets.",
    references=["checkov CKV_AWS_88", "trivy AVD-AWS-0009 (launch configurations)"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.inputs.get("associatePublicIpAddress") in (True, "true"):
        yield "the instance gets a public IP address (associatePublicIpAddress)"
    for i, nic in enumerate(as_list(r.inputs.get("networkInterfaces"))):
        if isinstance(nic, Mapping) and nic.get("associatePublicIpAddress") in (True, "true"):
            yield f"network interface {i} gets a public IP address (associatePublicIpAddress)"


RULE = check
