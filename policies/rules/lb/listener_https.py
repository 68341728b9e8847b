"""Load balancer listeners serve HTTPS (plain HTTP only to redirect)."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-lb-listener-https",
    severity="high",
    types=["aws:lb/listener:Listener"],
    description="Application load balancer listeners use HTTPS; an HTTP listener may only redirect to HTTPS.",
    remediation='Set protocol "HTTPS" with a certificate, or make the HTTP listener redirect to HTTPS.',
    references=["checkov CKV_AWS_2", "trivy AVD-AWS-0054"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    protocol = r.inputs.get("protocol")
    if is_unknown(protocol) or protocol != "HTTP":
        return
    actions = [a for a in as_list(r.inputs.get("defaultActions")) if isinstance(a, Mapping)]
    redirects = actions and all(
        a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol") == "HTTPS" for a in actions
    )
    if not redirects:
        yield "the listener serves plain HTTP"


RULE = check
