"""The cluster layer on a Terraform-managed cluster: the repository's program, unchanged (it reads the cloud
layer's outputs, which carry the adopted cluster's endpoint, CA and node security group).

pulumi -C cluster up -s staging    # after the cloud layer
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from mlplatform.infra.program import run_cluster_layer

run_cluster_layer()
