"""Nodes and instances get no public IP address."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, resource_rule


@resource_rule(
    id="aws-ec2-no-public-ip",
    severity="high",
    types=["aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"],
    description="Instances do not get public IP addresses; egress goes through NAT. An instance with no subnet and "
    "no network interface launches into a default subnet of the default VPC, which assigns public IPv4 addresses.",
    remediation="Set associatePublicIpAddress = false and launch into private subnets.",
    references=["checkov CKV_AWS_88", "trivy AVD-AWS-0009 (launch configurations)"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.inputs.get("associatePublicIpAddress") in (True, "true"):
        yield "the instance gets a public IP address (associatePublicIpAddress)"
    nics = as_list(r.inputs.get("networkInterfaces"))
    for i, nic in enumerate(nics):
        if isinstance(nic, Mapping) and nic.get("associatePublicIpAddress") in (True, "true"):
            yield f"network interface {i} gets a public IP address (associatePublicIpAddress)"
    if (
        r.type == "aws:ec2/instance:Instance"
        and r.inputs.get("subnetId") is None
        and r.inputs.get("networkInterfaces") is None
        and r.inputs.get("associatePublicIpAddress") is None
    ):
        # Amazon VPC User Guide, "Default subnets": instances launched into a default subnet receive a public
        # IPv4 address (the default subnet's MapPublicIpOnLaunch is true).
        yield "the instance sets no subnet: it launches into the default VPC, whose default subnets assign public IPs"


RULE = check
