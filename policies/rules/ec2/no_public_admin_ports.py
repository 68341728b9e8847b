"""No security group admits the internet to administration ports."""

from collections.abc import Iterator, Mapping
from typing import Any

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, contains_unknown, resource_rule

OPEN = {"0.0.0.0/0", "::/0"}


def _exposed(rule: Mapping[str, Any], admin_ports: list[int]) -> list[int]:
    cidrs = set(as_list(rule.get("cidrBlocks"))) | set(as_list(rule.get("ipv6CidrBlocks")))
    cidrs |= {v for v in (rule.get("cidrIpv4"), rule.get("cidrIpv6")) if isinstance(v, str)}
    if not cidrs & OPEN:
        return []
    protocol = str(rule.get("protocol", rule.get("ipProtocol", "tcp"))).lower()
    if protocol in ("-1", "all"):
        return admin_ports
    if protocol not in ("tcp", "6", "udp", "17"):
        return []
    low, high = rule.get("fromPort"), rule.get("toPort")
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return []
    return [p for p in admin_ports if int(low) <= p <= int(high)]


@resource_rule(
    id="aws-ec2-no-public-admin-ports",
    severity="high",
    types=[
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    ],
    description="Security groups do not allow 0.0.0.0/0 or ::/0 to administration ports (SSH, RDP, the Kubernetes "
    "API, the kubelet, Docker).",
    remediation="Restrict the source to a VPN or bastion range, or use SSM Session Manager instead of SSH.",
    references=["checkov CKV_AWS_24", "checkov CKV_AWS_25", "trivy AVD-AWS-0107", "CIS AWS Foundations 5.2"],
    params={"adminPorts": [22, 3389, 6443, 10250, 2375, 2376]},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    ports = [int(p) for p in ctx.params["adminPorts"]]
    if r.type == "aws:ec2/securityGroup:SecurityGroup":
        rules = [x for x in as_list(r.inputs.get("ingress")) if isinstance(x, Mapping)]
    elif r.type == "aws:ec2/securityGroupRule:SecurityGroupRule":
        rules = [r.inputs] if r.inputs.get("type") == "ingress" else []
    else:
        rules = [r.inputs]
    for rule in rules:
        if contains_unknown(rule):
            continue
        exposed = _exposed(rule, ports)
        if exposed:
            yield f"ingress from the internet reaches admin port(s) {', '.join(map(str, exposed))}"


RULE = check
