"""Every EBS volume of a launch template or instance is encrypted."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, is_unknown, resource_rule


def _encrypted(value: object) -> bool:
    return value is True or value == "true"


@resource_rule(
    id="aws-ec2-encrypted-volumes",
    severity="high",
    types=["aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance", "aws:ebs/volume:Volume"],
    description="EBS volumes (attached by launch templates and instances, or standalone) are encrypted.",
    remediation="Set ebs.encrypted = true on every block device mapping (and the root block device), and "
    "encrypted = true on EBS volumes.",
    references=["checkov CKV_AWS_8", "checkov CKV_AWS_3", "trivy AVD-AWS-0131", "trivy AVD-AWS-0008"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    devices: list[tuple[str, object]] = []
    if r.type == "aws:ebs/volume:Volume":
        devices.append(("(EBS volume)", r.inputs.get("encrypted")))
    elif r.type == "aws:ec2/launchTemplate:LaunchTemplate":
        for mapping in as_list(r.inputs.get("blockDeviceMappings")):
            if isinstance(mapping, Mapping) and isinstance(mapping.get("ebs"), Mapping):
                devices.append((str(mapping.get("deviceName", "?")), mapping["ebs"].get("encrypted")))
    else:
        root = r.inputs.get("rootBlockDevice")
        if isinstance(root, Mapping):
            devices.append(("root", root.get("encrypted")))
        for device in as_list(r.inputs.get("ebsBlockDevices") or r.inputs.get("ebsBlockDevice")):
            if isinstance(device, Mapping):
                devices.append((str(device.get("deviceName", "?")), device.get("encrypted")))
    for name, encrypted in devices:
        if is_unknown(encrypted):
            continue
        if not _encrypted(encrypted):
            yield f"volume {name} is not encrypted"


RULE = check
