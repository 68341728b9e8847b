"""No bucket is made public by a canned ACL."""

from collections.abc import Iterator

from policies.model import Resource, RuleContext, resource_rule

PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")


@resource_rule(
    id="aws-s3-bucket-no-public-acl",
    severity="high",
    types=["aws:s3/bucket:Bucket", "aws:s3/bucketAcl:BucketAcl"],
    description="S3 buckets use no public canned ACL (public-read, public-read-write, authenticated-read).",
    remediation="Remove the ACL and set BucketOwnerEnforced ownership (ACLs disabled).",
    references=["checkov CKV_AWS_20", "trivy AVD-AWS-0092"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    acl = r.inputs.get("acl")
    if acl in PUBLIC_ACLS:
        yield f"the bucket ACL {acl} makes objects readable outside the account"


RULE = check
