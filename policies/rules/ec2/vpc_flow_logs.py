"""Every VPC has flow logs."""

from collections.abc import Iterator, Sequence

from mlplatform.policies.helpers import ReferenceIndex, by_type
from mlplatform.policies.model import Resource, RuleContext, stack_rule


@stack_rule(
    id="aws-ec2-vpc-flow-logs",
    severity="medium",
    types=["aws:ec2/vpc:Vpc", "aws:ec2/flowLog:FlowLog"],
    description="Every VPC the stack creates records flow logs.",
    remediation="Create an aws.ec2.FlowLog with vpcId set to the VPC (CloudWatch Logs or S3, with retention).",
    references=["checkov CKV2_AWS_11", "trivy AVD-AWS-0178", "CIS AWS Foundations 3.9"],
)
def check(resources: Sequence[Resource], ctx: RuleContext) -> Iterator[tuple[Resource, str]]:
    logs = ReferenceIndex(resources, "aws:ec2/flowLog:FlowLog", "vpcId")
    for vpc in by_type(resources, "aws:ec2/vpc:Vpc"):
        if not logs.find(vpc, vpc.inputs.get("id")):
            yield vpc, "the VPC has no flow log"


RULE = check
