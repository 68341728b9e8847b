"""What an attribute is when a Terraform plan leaves it unset: the provider's documented defaults the reader applies.

A plan marks many attributes `(known after apply)` that nothing in the configuration sets: the provider fills them
in from the AWS default. The reader (policies/sources/terraform.py) uses the plan's `configuration` block to tell
the two cases apart:

- unknown AND configured (the resource's config has an expression for it): stays UNKNOWN; a rule that reads it
  cannot judge it, and the report lists it as unjudged (rule, resource, attribute);
- unknown or absent AND not configured: the attribute is unset, as a Pulumi input left out would be, and the rules
  judge the unset value (they already know the AWS behaviour of an unset input: "endpointPublicAccess unset is
  public", "httpTokens unset accepts IMDSv1"). Where the rule needs a value, or a block must exist for the rule to
  see it, the default below is filled in.

Only defaults that the provider or the AWS API documents are applied:

| Terraform type | attribute | default | source (quoted below) |
|---|---|---|---|
| `aws_instance` | `root_block_device.encrypted` | `false` | [1] |
| `aws_instance`, `aws_launch_template` | `metadata_options.http_endpoint` | `"enabled"` | [2] |
| `aws_db_instance` | `storage_encrypted` | `false` | [3] |
| `aws_db_instance` | `publicly_accessible` | `false` | [3] |
| `aws_db_instance` | `deletion_protection` | `false` | [3] |
| `aws_kms_key` | `enable_key_rotation` | `false` | [4] |
| `aws_ecr_repository` | `image_tag_mutability` | `"MUTABLE"` | [5] |

[1] Terraform AWS provider, resource `aws_instance`, block `root_block_device`: "encrypted - (Optional) Whether to
    enable volume encryption. Defaults to false." Every instance has a root volume, so the block is filled in when
    the configuration has none.
[2] EC2 API reference, InstanceMetadataOptionsRequest and LaunchTemplateInstanceMetadataOptionsRequest,
    HttpEndpoint: "If the parameter is not specified, the default state is enabled."
[3] Terraform AWS provider, resource `aws_db_instance`: storage_encrypted "The default is false if not specified";
    publicly_accessible "Default is false"; deletion_protection "The default is false".
[4] Terraform AWS provider, resource `aws_kms_key`: enable_key_rotation "Defaults to false".
[5] Terraform AWS provider, resource `aws_ecr_repository`: image_tag_mutability "Defaults to MUTABLE".

Deliberately NOT filled in:

- `metadata_options.http_tokens`: the EC2 API default is `optional`, except that an AMI registered with
  `ImdsSupport = v2.0` (Amazon Linux 2023, the EKS AL2023 AMIs) and the account's IMDS defaults make it `required`;
  the plan shows neither. The attribute stays unset and the IMDSv2 rule reports what it reports for an unset
  Pulumi input: the configuration does not require tokens.
- `aws_s3_bucket.versioning` (computed since provider v4): unset; a new bucket is unversioned ("Buckets are
  unversioned by default", Amazon S3 User Guide, "Retaining multiple versions of objects"), and the versioning
  rule reads an absent value as "not enabled".
- `aws_ebs_volume.encrypted`: unset, which the encrypted-volumes rule reads as not encrypted (EBS encryption by
  default is an account setting the plan does not show: the rule judges the configuration).

Sources: https://registry.terraform.io/providers/hashicorp/aws/latest/docs (resource pages named above) and
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceMetadataOptionsRequest.html.
Checked on 2026-12-05 in a public code index: [1] verbatim in the provider's `website/docs/r/instance.html.markdown`
("Defaults to `false`. Must be configured to perform drift detection.") and in pulumi-aws's generated SDKs; [3],
[4] and [5] as modules' variable descriptions that copy the provider's text ("The default is false if not
specified", "Specifies whether key rotation is enabled. Defaults to false.", "Must be one of: `MUTABLE` or
`IMMUTABLE`. Defaults to `MUTABLE`."), not on the provider's own pages.
"""

from __future__ import annotations

DEFAULTS: dict[str, tuple[tuple[str, object], ...]] = {
    "aws_instance": (("root_block_device.encrypted", False), ("metadata_options.http_endpoint", "enabled")),
    "aws_launch_template": (("metadata_options.http_endpoint", "enabled"),),
    "aws_db_instance": (
        ("storage_encrypted", False),
        ("publicly_accessible", False),
        ("deletion_protection", False),
    ),
    "aws_kms_key": (("enable_key_rotation", False),),
    "aws_ecr_repository": (("image_tag_mutability", "MUTABLE"),),
}
"""Terraform type -> (attribute path through nested blocks, default) applied where the configuration sets neither."""
