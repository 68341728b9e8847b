"""Load balancers write access logs."""

from collections.abc import Iterator

from policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-lb-access-logs",
    severity="low",
    types=["aws:lb/loadBalancer:LoadBalancer"],
    description="Application and network load balancers write access logs to S3.",
    remediation="Set accessLogs = {enabled: true, bucket: <log bucket>}.",
    references=["checkov CKV_AWS_91"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    enabled = r.get("accessLogs.enabled")
    if not is_unknown(enabled) and enabled is not True:
        yield "the load balancer writes no access logs"


RULE = check
