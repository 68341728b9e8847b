"""Load balancers write access logs."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-lb-access-logs",
    severity="low",
    types=["aws:lb/loadBalancer:LoadBalancer", "aws:elb/loadBalancer:LoadBalancer"],
    description="Application, network and classic load balancers write access logs to S3.",
    remediation="Set accessLogs = {enabled: true, bucket: <log bucket>}.",
    references=["checkov CKV_AWS_91"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    enabled = r.get("accessLogs.enabled")
    if r.type == "aws:elb/loadBalancer:LoadBalancer" and enabled is None and r.get("accessLogs.bucket"):
        return  # a classic ELB's access_logs block is enabled unless it says otherwise (provider: "Default is true")
    if not is_unknown(enabled) and enabled is not True:
        yield "the load balancer writes no access logs"


RULE = check
