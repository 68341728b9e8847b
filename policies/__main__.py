"""CrossGuard entry point: `pulumi preview --policy-pack policies --policy-pack-config policies/config.<env>.json`.

Only this module builds a PolicyPack (doing so starts a gRPC server that never returns). Every policy is a thin
wrapper over a rule in `policies/rules` (see policies/crossguard.py): the same functions `mlp policy` runs on
offline and Terraform plans.
"""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

# The pack runs from this directory; the rules live in the repository's `policies` and `infra` packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlplatform.policies.crossguard import policies

PolicyPack(
    name="ml-platform",
    # Advisory unless the environment's config file (policies/config.<env>.json) says otherwise.
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=policies(),
)
