"""The cloud layer on a Terraform-managed cluster: the repository's program, unchanged; the stack file adopts the
VPC and the cluster from `foundation/terraform.tfstate`.

pulumi up -s staging                                 # with the Pulumi CLI and AWS credentials
mlp plan staging -C examples/terraform-cluster       # offline, from the repository root
"""

import sys
from pathlib import Path

# `pulumi up` runs this folder as the program; the component library is the repository root's `infra/`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mlplatform.infra.program import run_cloud_layer

run_cloud_layer()
