"""HTTPS and TLS listeners accept TLS 1.2 or newer only."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule

TLS12_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
]


@resource_rule(
    id="aws-lb-listener-tls12",
    severity="high",
    types=["aws:lb/listener:Listener"],
    description="HTTPS and TLS listeners use a security policy that refuses TLS 1.0 and 1.1.",
    remediation="Set sslPolicy to ELBSecurityPolicy-TLS13-1-2-2021-06 (or another policy in the allowed list).",
    references=["checkov CKV_AWS_103", "trivy AVD-AWS-0047"],
    params={"allowedPolicies": TLS12_POLICIES},
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    if r.inputs.get("protocol") not in ("HTTPS", "TLS"):
        return
    policy = r.inputs.get("sslPolicy")
    if is_unknown(policy):
        return
    if policy not in ctx.params["allowedPolicies"]:
        yield f"the listener's security policy {policy or '(AWS default)'} allows TLS older than 1.2"


RULE = check
