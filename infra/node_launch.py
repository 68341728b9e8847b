"""The launch template every managed node group of the platform uses (system nodes and reserved GPU pools).

One place for the node hardening: IMDSv2 required with hop limit 1, an encrypted gp3 volume, and tag
specifications that put the cost tags on instances, volumes and network interfaces (managed node group `tags`
never reach them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from mlplatform.infra import nodes


def node_launch_template(
    resource_name: str,
    *,
    description: str,
    ami_type: str,
    disk_size_gib: int,
    instance_tags: Mapping[str, str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    **extra: Any,
) -> aws.ec2.LaunchTemplate:
    """`extra` takes further typed LaunchTemplate arguments (capacity reservation targeting, market options)."""
    device = nodes.node_block_device(ami_type, disk_size_gib)
    return aws.ec2.LaunchTemplate(
        resource_name,
        description=description,
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(**nodes.IMDSV2_REQUIRED),
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=device["device_name"], ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(**device["ebs"])
            )
        ],
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(**spec)
            for spec in nodes.launch_tag_specifications(instance_tags)
        ],
        update_default_version=True,
        tags=dict(tags),
        opts=opts,
        **extra,
    )
