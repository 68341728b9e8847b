"""Symmetric KMS keys rotate their key material."""

from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


@resource_rule(
    id="aws-kms-key-rotation",
    severity="medium",
    types=["aws:kms/key:Key"],
    description="Symmetric encryption KMS keys have automatic key rotation enabled.",
    remediation="Set enableKeyRotation = true (and rotationPeriodInDays, 90 to 2560).",
    references=["checkov CKV_AWS_7", "trivy AVD-AWS-0065", "CIS AWS Foundations 3.6"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    spec = r.inputs.get("customerMasterKeySpec") or r.inputs.get("keySpec") or "SYMMETRIC_DEFAULT"
    usage = r.inputs.get("keyUsage") or "ENCRYPT_DECRYPT"
    rotation = r.inputs.get("enableKeyRotation")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT" or is_unknown(rotation):
        return
    if rotation is not True:
        yield "key rotation is off"


RULE = check
