"""User data holds no credentials (it is readable by anyone who can describe the instance or template)."""

import base64
import binascii
import re
from collections.abc import Iterator

from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("an AWS secret access key", re.compile(r"aws_secret_access_key\s*[=:]", re.I)),
    ("a private key", re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("a password", re.compile(r"\b(password|passwd|pwd)\s*[=:]\s*['\"]?[^\s'\"$]{4,}", re.I)),
)


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return value


@resource_rule(
    id="aws-ec2-no-secrets-in-user-data",
    severity="critical",
    types=["aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"],
    description="Launch template and instance user data contain no credentials.",
    remediation="Read secrets at boot from AWS Secrets Manager or SSM Parameter Store with the instance role.",
    references=["checkov CKV_AWS_46", "trivy AVD-AWS-0029", "trivy AVD-AWS-0129"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for key in ("userData", "userDataBase64"):
        value = r.inputs.get(key)
        if not isinstance(value, str) or is_unknown(value):
            continue
        text = _decoded(value)
        for kind, pattern in PATTERNS:
            if pattern.search(text):
                yield f"{key} contains what looks like {kind}"


RULE = check
