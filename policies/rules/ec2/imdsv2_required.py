"""Instances and launch templates require IMDSv2 session tokens."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-ec2-imdsv2-required",
    severity="high",
    types=["aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"],
    description="Instance metadata requires IMDSv2 tokens (httpTokens = required), which blocks SSRF-style "
    "credential theft through IMDSv1.",
    remediation='Set metadataOptions = {httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1}.',
    references=["checkov CKV_AWS_79", "trivy AVD-AWS-0028", "trivy AVD-AWS-0130"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    tokens = r.get("metadataOptions.httpTokens")
    endpoint = r.get("metadataOptions.httpEndpoint")
    if is_unknown(tokens) or endpoint == "disabled":
        return
    if tokens != "required":
        yield f"instance metadata accepts IMDSv1 (metadataOptions.httpTokens is {tokens or 'unset'}); require tokens"


RULE = check
