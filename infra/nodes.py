"""Pure launch settings shared by every EC2 node the platform launches itself (system and GPU node groups)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def root_device_name(ami_type: str) -> str:
    """The block device that holds images and pods' ephemeral storage for an AMI family."""
    # Bottlerocket boots from /dev/xvda and keeps containers on the data volume /dev/xvdb.
    return "/dev/xvdb" if ami_type.startswith("BOTTLEROCKET") else "/dev/xvda"


def node_block_device(ami_type: str, size_gib: int) -> dict[str, Any]:
    """An encrypted gp3 volume, deleted with the instance."""
    return {
        "device_name": root_device_name(ami_type),
        "ebs": {
            "volume_size": size_gib,
            "volume_type": "gp3",
            "iops": 3000,
            "throughput": 125,
            "encrypted": "true",
            "delete_on_termination": "true",
        },
    }


IMDSV2_REQUIRED: dict[str, Any] = {
    "http_endpoint": "enabled",
    "http_tokens": "required",
    # 1 hop: pods (one hop further) cannot reach the node's instance credentials; they use Pod Identity.
    "http_put_response_hop_limit": 1,
    "instance_metadata_tags": "disabled",
}

TAGGED_LAUNCH_RESOURCES: tuple[str, ...] = ("instance", "volume", "network-interface")


def launch_tag_specifications(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """Managed node group `tags` do not reach instances, volumes or ENIs; launch template tag specs do."""
    return [{"resource_type": kind, "tags": dict(tags)} for kind in TAGGED_LAUNCH_RESOURCES]
