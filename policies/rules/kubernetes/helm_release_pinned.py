"""Helm releases pin their chart version."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="kubernetes-helm-release-pinned",
    severity="medium",
    types=["kubernetes:helm.sh/v3:Release"],
    description="Helm releases name an exact chart version, so that `pulumi up` installs what was reviewed.",
    remediation="Set version to a released chart version (the platform keeps them in infra/catalog/data).",
    references=["Helm best practices: pin chart versions"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    version = r.inputs.get("version")
    if is_unknown(version):
        return
    if not version or any(c in str(version) for c in "^~*><x"):
        yield f"chart {r.inputs.get('chart')} has no exact version ({version or 'unset'})"


RULE = check
