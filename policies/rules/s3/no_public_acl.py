"""No bucket is made public by a canned ACL."""

from collections.abc import Iterator, Mapping

from mlplatform.policies.helpers import as_list
from mlplatform.policies.model import Resource, RuleContext, resource_rule

PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def _public_grants(r: Resource) -> list[str]:
    """Grantee group URIs of ACL grants to everyone: a BucketAcl's accessControlPolicy or a Bucket's grants."""
    policy = r.inputs.get("accessControlPolicy")
    grants = as_list(policy.get("grants")) if isinstance(policy, Mapping) else []
    grants += as_list(r.inputs.get("grants"))
    found = []
    for grant in grants:
        if not isinstance(grant, Mapping):
            continue
        grantee = grant.get("grantee")
        uri = grantee.get("uri") if isinstance(grantee, Mapping) else grant.get("uri")
        if uri in PUBLIC_GROUPS:
            found.append(f"{str(uri).rsplit('/', 1)[-1]} ({grant.get('permission') or grant.get('permissions')})")
    return found


@resource_rule(
    id="aws-s3-bucket-no-public-acl",
    severity="high",
    types=["aws:s3/bucket:Bucket", "aws:s3/bucketAcl:BucketAcl"],
    description="S3 buckets use no public canned ACL (public-read, public-read-write, authenticated-read) and no "
    "ACL grant to the AllUsers or AuthenticatedUsers groups.",
    remediation="Remove the ACL and set BucketOwnerEnforced ownership (ACLs disabled).",
    references=["checkov CKV_AWS_20", "trivy AVD-AWS-0092"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    acl = r.inputs.get("acl")
    if acl in PUBLIC_ACLS:
        yield f"the bucket ACL {acl} makes objects readable outside the account"
    for grant in _public_grants(r):
        yield f"the bucket ACL grants {grant} to everyone outside the account"


RULE = check
