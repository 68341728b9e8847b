"""Pods cannot reach the node's instance credentials: the IMDS response hop limit is 1."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-ec2-imds-hop-limit",
    severity="medium",
    types=["aws:ec2/launchTemplate:LaunchTemplate"],
    description="The IMDS PUT response hop limit keeps metadata responses on the node: with 1, a pod (one hop "
    "further) cannot obtain the node role's credentials and must use Pod Identity.",
    remediation="Set metadataOptions.httpPutResponseHopLimit to 1 and give workloads Pod Identity roles.",
    references=["checkov CKV_AWS_341", "AWS EKS best practices: restrict access to the instance metadata service"],
    params={"maxHopLimit": 1},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    hops = r.get("metadataOptions.httpPutResponseHopLimit")
    if hops is None or is_unknown(hops):
        return
    if int(hops) > int(ctx.params["maxHopLimit"]):
        yield (
            f"IMDS hop limit is {hops}: pods can reach the node's instance credentials "
            f"(allowed: {ctx.params['maxHopLimit']})"
        )


RULE = check
