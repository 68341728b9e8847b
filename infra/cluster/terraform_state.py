"""The EKS cluster a Terraform state exports (terraform-aws-modules/eks's output names by default), each value
checked for its shape, and the Kubernetes version checked against the one the stack pins add-ons and schemas for.

Output names and meanings checked in terraform-aws-modules/terraform-aws-eks v21.19.0, `outputs.tf` at commit
bef29c4d9523523e57fe898643fde2895106b339: `cluster_name`, `cluster_endpoint`, `cluster_certificate_authority_data`
("Base64 encoded certificate data"), `cluster_security_group_id` (the module's cluster security group, on the
control plane's interfaces), `node_security_group_id` ("node shared security group"), `cluster_version`,
`oidc_provider_arn` (null unless `enable_irsa`). Pure: no Pulumi, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlplatform.infra.terraform_state import TerraformStateError, missing_output

_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_ENDPOINT = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?/?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_OIDC_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/\S+$")
CONFIG_KEY = "cluster.adopt.terraform_state.outputs"


@dataclass(frozen=True)
class AdoptedClusterFacts:
    """What the platform needs to know of a cluster it did not create."""

    cluster_name: str
    endpoint: str
    certificate_authority_data: str
    cluster_security_group_id: str
    node_security_group_id: str
    version: str | None = None
    oidc_provider_arn: str | None = None


def _pem_base64(value: str) -> bool:
    try:
        return base64.b64decode(value, validate=True).startswith(b"-----BEGIN CERTIFICATE-----")
    except (binascii.Error, ValueError):
        return False


def cluster_from_outputs(
    outputs: Mapping[str, Any],
    names: Mapping[str, str | None],
    source: str,
    *,
    expected_version: str,
    expected_name: str | None = None,
) -> AdoptedClusterFacts:
    """Pick the cluster's facts out of a state's outputs. `names` maps each role (cluster_name, cluster_endpoint,
    ...; see `infra.config.ClusterOutputNames`) to the output holding it; `expected_version` is cluster.version,
    `expected_name` cluster.name when configured."""

    def output(role: str, *, optional: bool = False) -> Any:
        name = names.get(role)
        if name is None:
            return None
        if name not in outputs or (outputs[name] is None and not optional):
            if optional:
                return None
            if name in outputs:
                raise TerraformStateError(
                    f"{source}: output {name!r} (for {role}) is null: the module did not create it (for "
                    f"node_security_group_id: terraform-aws-eks `create_node_security_group = false`); give the "
                    f"security group in another output and name it in {CONFIG_KEY}.{role}"
                )
            raise missing_output(outputs, name, role, source, f"{CONFIG_KEY}.{role}")
        return outputs[name]

    def checked(role: str, pattern: re.Pattern[str], example: str) -> str:
        value = output(role)
        if not isinstance(value, str) or not pattern.match(value):
            raise TerraformStateError(
                f"{source}: output {names[role]!r} (for {role}) must be {example} (got {type(value).__name__} "
                f"{str(value)[:60]!r})"
            )
        return value

    cluster_name = checked("cluster_name", _NAME, "an EKS cluster name")
    endpoint = checked("cluster_endpoint", _ENDPOINT, "the API server's https:// endpoint")
    ca = output("cluster_certificate_authority_data")
    if not isinstance(ca, str) or not _pem_base64(ca):
        raise TerraformStateError(
            f"{source}: output {names['cluster_certificate_authority_data']!r} (for "
            "cluster_certificate_authority_data) must be the base64 of a PEM certificate, as EKS gives it"
        )
    cluster_sg = checked("cluster_security_group_id", _SECURITY_GROUP, "a security group id such as sg-0123abcd")
    node_sg = checked("node_security_group_id", _SECURITY_GROUP, "a security group id such as sg-0123abcd")
    version = output("cluster_version")
    if not isinstance(version, str):
        raise TerraformStateError(f"{source}: output {names['cluster_version']!r} must be a version such as '1.35'")
    if version != expected_version:
        raise TerraformStateError(
            f"{source}: the cluster runs Kubernetes {version} (output {names['cluster_version']!r}) but "
            f"cluster.version is {expected_version!r}: set cluster.version: {version!r} (the add-on versions, "
            "chart pins and schemas the plan checks against follow it)"
        )
    oidc = output("oidc_provider_arn", optional=True)
    if oidc is not None and (not isinstance(oidc, str) or not _OIDC_ARN.match(oidc)):
        raise TerraformStateError(
            f"{source}: output {names['oidc_provider_arn']!r} (for oidc_provider_arn) must be an IAM OIDC "
            f"provider ARN (got {str(oidc)[:60]!r})"
        )
    if expected_name is not None and cluster_name != expected_name:
        raise TerraformStateError(
            f"{source}: the cluster is named {cluster_name!r} (output {names['cluster_name']!r}) but cluster.name "
            f"is {expected_name!r}: set cluster.name: {cluster_name} or remove it"
        )
    return AdoptedClusterFacts(
        cluster_name=cluster_name,
        endpoint=endpoint,
        certificate_authority_data=ca,
        cluster_security_group_id=cluster_sg,
        node_security_group_id=node_sg,
        version=version,
        oidc_provider_arn=oidc,
    )
