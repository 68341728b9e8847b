"""CrossGuard entry point: `pulumi preview --policy-pack policies`.

Only this module builds a PolicyPack (doing so starts a gRPC server that never returns); the rules it serves are
the plain functions in `policies.rules`, tested without Pulumi.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="ml-platform", enforcement_level=EnforcementLevel.ADVISORY, policies=[])
