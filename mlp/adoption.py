"""What a plan does to a cluster it adopted (`cluster.adopt`): the resources it attaches to that cluster, and any
that would create or change what stays its owner's (the control plane, node groups, launch templates, the VPC and
subnets, the aws-auth ConfigMap, rules on security groups the plan did not create but the one config asks for).

Pure: reads a plan, no I/O. `mlp plan` prints the summary for a stack that adopts its cluster and fails on any
resource of the second kind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mlplatform.mlp.planner import Plan, PlannedResource

OWNER_ONLY_TYPES: dict[str, str] = {
    "aws:eks/cluster:Cluster": "the EKS cluster",
    "aws:eks/nodeGroup:NodeGroup": "a managed node group",
    "aws:eks/fargateProfile:FargateProfile": "a Fargate profile",
    "aws:ec2/launchTemplate:LaunchTemplate": "a launch template",
    "aws:ec2/vpc:Vpc": "a VPC",
    "aws:ec2/subnet:Subnet": "a subnet",
    "aws:ec2/natGateway:NatGateway": "a NAT gateway",
    "aws:ec2/internetGateway:InternetGateway": "an internet gateway",
    "aws:ec2/routeTable:RouteTable": "a route table",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "a VPC endpoint",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "a security group rule (legacy resource)",
}
_RULE_TYPES = (
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
)
ALLOWED_FOREIGN_RULES = frozenset({"runner-to-api"})
"""Rules on a group of the adopted cluster that config may ask for (`cluster.adopt.runner_api_ingress`)."""


@dataclass(frozen=True)
class AdoptionReport:
    attached: tuple[PlannedResource, ...]
    """Resources that act on the adopted cluster (access entries, add-ons, Pod Identity associations) or on its
    security groups (the runner's API rule)."""
    forbidden: tuple[tuple[PlannedResource, str], ...]
    """Resources that would create or change what stays the cluster owner's, with what they are."""

    @property
    def ok(self) -> bool:
        return not self.forbidden

    def summary(self) -> str:
        counts = Counter(r.type.rsplit(":", 1)[-1] for r in self.attached)
        parts = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        head = f"Adopted cluster: {len(self.attached)} resources attached ({parts or 'none'}); "
        if self.ok:
            rules = [r.name for r in self.attached if r.type in _RULE_TYPES]
            added = f"; rules added to its security groups: {', '.join(rules)} (as config asks)" if rules else ""
            return (
                head + "none creates or changes the cluster, its node groups, launch templates, aws-auth ConfigMap, "
                "network or its security groups' existing rules" + added
            )
        listed = "; ".join(f"{r.name} ({what})" for r, what in self.forbidden)
        return head + f"{len(self.forbidden)} would change what stays the cluster owner's: {listed}"


def _on_foreign_group(resource: PlannedResource) -> bool:
    """A security group rule whose group is not one the plan creates (its id is no planned resource's output)."""
    return resource.type in _RULE_TYPES and not resource.references.get("securityGroupId")


def check_adoption(plan: Plan) -> AdoptionReport:
    attached: list[PlannedResource] = []
    forbidden: list[tuple[PlannedResource, str]] = []
    for resource in plan.resources:
        if not resource.custom:
            continue
        if resource.type in OWNER_ONLY_TYPES:
            forbidden.append((resource, OWNER_ONLY_TYPES[resource.type]))
        elif resource.type == "kubernetes:core/v1:ConfigMap" and (
            (resource.inputs.get("metadata") or {}).get("name") == "aws-auth"
        ):
            forbidden.append((resource, "the aws-auth ConfigMap"))
        elif _on_foreign_group(resource):
            if resource.name in ALLOWED_FOREIGN_RULES:
                attached.append(resource)
            else:
                forbidden.append((resource, "a rule on a security group the plan does not create"))
        elif resource.type.startswith("aws:eks/"):
            attached.append(resource)
    return AdoptionReport(attached=tuple(attached), forbidden=tuple(forbidden))
